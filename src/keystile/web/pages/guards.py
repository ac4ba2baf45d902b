"""Guards for pages: a browser without a session is sent to sign in, not answered 401.

::

    pages = keystile.pages

    @app.get("/notes")
    async def notes(user: User = Depends(pages.require_user)) -> HTMLResponse: ...

    @app.get("/settings")
    async def settings(session: Session = Depends(pages.require_recent_auth(300))) -> ...: ...

    @app.get("/vault")
    async def vault(
        user: User = Depends(pages.require_recovery_codes(on_missing="redirect_to_setup")),
    ) -> ...: ...

A refusal is a :class:`PageRedirect` (303 with ``Location``), answered by
the handler :meth:`Keystile.install` adds. ``next`` carries the page to come
back to; only a same-site path is ever followed (:func:`safe_next`), so a
crafted link cannot send the browser elsewhere after it signs in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Final, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

#: The longest ``next`` followed.
MAX_NEXT: Final = 2000


class PageRedirect(StarletteHTTPException):
    """Send the browser to ``location`` (303 See Other): a page guard's refusal."""

    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(status_code=303, headers={"Location": location})


async def on_page_redirect(_request: Request, error: Exception) -> Response:
    """The exception handler for :class:`PageRedirect` (a plain 303, no body)."""
    assert isinstance(error, PageRedirect)
    return RedirectResponse(error.location, status_code=303)


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a path on this site (``/…``, no scheme, host, backslash or
    control character, not protocol-relative); otherwise ``None``. Pure."""
    if not value or len(value) > MAX_NEXT or not value.startswith("/"):
        return None
    if (
        value.startswith("//")
        or "\\" in value
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
    ):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def with_next(path: str, next_path: str | None, **params: str) -> str:
    """``path`` with ``next`` (when safe) and ``params`` in its query."""
    query = {**params}
    safe = safe_next(next_path)
    if safe is not None:
        query["next"] = safe
    return f"{path}?{urlencode(query)}" if query else path


def here(request: Request) -> str:
    """The path and query of ``request``: where to come back to."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


OnMissing = Literal["halt", "redirect_to_setup"]
UserDependency = Callable[..., Awaitable[object]]


def as_seconds(max_age: timedelta | int) -> timedelta:
    """``max_age`` as a ``timedelta``.

    Raises:
        ValueError: a negative age.
    """
    age = max_age if isinstance(max_age, timedelta) else timedelta(seconds=max_age)
    if age < timedelta(0):
        raise ValueError("max_age must not be negative")
    return age
