"""The recovery-code guard and helpers: make signed-in users keep a fallback second factor.

::

    # FastAPI: one route, or a group of routes (a router's dependencies)
    @app.get("/billing", dependencies=[Depends(keystile.require_recovery_codes())])
    async def billing() -> ...: ...

    router = APIRouter(
        dependencies=[Depends(keystile.require_recovery_codes(on_missing="redirect_to_setup"))]
    )

    # Starlette: a group of routes behind pure ASGI middleware
    Mount("/app", routes=[...], middleware=[
        Middleware(RequireRecoveryCodesMiddleware, keystile=keystile, on_missing="/welcome"),
    ])

The guard only asks whether the caller holds an unused recovery code:

- a request with no authenticated user passes through untouched (no bearer
  token, or one that does not verify: refusing those is another guard's
  job, such as ``keystile.require_user``); a store that cannot be reached
  is 503 ``unavailable``, never a pass;
- a user with an unused code passes;
- otherwise ``on_missing`` decides: ``"halt"`` answers 403
  ``recovery_codes_required``; ``"redirect_to_setup"`` answers 303 to
  ``setup_path``; any other value is a path to answer 303 to. A JSON caller
  (``Accept`` naming ``application/json``, or not naming ``text/html``)
  always gets the 403, which a script can act on where a redirect to a page
  would only confuse it.

With recovery codes turned off (``KEYSTILE_RECOVERY_CODES_ENABLED=false``)
nobody can hold one, so the guard lets everyone through rather than locking
every user out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from fastapi import Request
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from keystile.errors import KeystileError, RecoveryCodesRequiredError, UnauthenticatedError
from keystile.flows.sessions import Sessions
from keystile.settings import Settings
from keystile.store.users import User
from keystile.web.authentication import SessionUser
from keystile.web.errors import GuardError, error_response
from keystile.web.guards import bearer_token
from keystile.web.headers import NO_STORE

if TYPE_CHECKING:
    from keystile.web.app import Keystile

HALT: Final = "halt"
REDIRECT_TO_SETUP: Final = "redirect_to_setup"
#: The page that generates and shows codes (API.md's pages).
DEFAULT_SETUP_PATH: Final = "/auth/recovery-codes"

#: Whether a user holds an unused code.
ConfiguredCheck = Callable[[User], Awaitable[bool]]


def recovery_code_available(settings: Settings) -> bool:
    """Whether the deployment of ``settings`` offers recovery codes at all (the routes
    are mounted, a TOTP enrolment hands out a batch, sign-ins accept them)."""
    return settings.recovery_codes_enabled


@dataclass(frozen=True, slots=True)
class MissingCodesPolicy:
    """What the guard answers a user without an unused code (pure).

    Attributes:
        on_missing: ``"halt"``, ``"redirect_to_setup"`` or a path to redirect to.
        setup_path: where ``"redirect_to_setup"`` sends the user.
    """

    on_missing: str = HALT
    setup_path: str = DEFAULT_SETUP_PATH

    def __post_init__(self) -> None:
        if not _is_local_path(self.setup_path):
            raise ValueError(f"setup_path must be a path starting with '/': {self.setup_path!r}")
        if self.on_missing not in (HALT, REDIRECT_TO_SETUP) and not _is_local_path(self.on_missing):
            raise ValueError(
                "on_missing must be 'halt', 'redirect_to_setup' or a path starting with '/': "
                f"{self.on_missing!r}"
            )

    def redirect_for(self, accept: str | None) -> str | None:
        """Where to send a caller whose ``Accept`` header is ``accept``; ``None``: answer 403."""
        if self.on_missing == HALT or not wants_html(accept):
            return None
        return self.setup_path if self.on_missing == REDIRECT_TO_SETUP else self.on_missing


def _is_local_path(value: str) -> bool:
    # A path on this site: "//host" would be a network-path reference to another site.
    return value.startswith("/") and not value.startswith("//")


def wants_html(accept: str | None) -> bool:
    """Whether the caller is a browser asking for a page: ``Accept`` names ``text/html``
    and not ``application/json``."""
    media = {part.split(";", 1)[0].strip().lower() for part in (accept or "").split(",")}
    return "text/html" in media and "application/json" not in media


async def _caller(sessions: Sessions, authorization: str | None) -> User | None:
    """The user of a bearer token; ``None`` for no token or one that does not verify.

    Raises:
        KeystileError: the store cannot be reached (``unavailable``): fail closed.
    """
    token = bearer_token(authorization)
    if token is None:
        return None
    try:
        session = await sessions.verify(token)
    except UnauthenticatedError:
        return None
    return session.user


def recovery_codes_dependency(
    sessions: Sessions, configured: ConfiguredCheck | None, policy: MissingCodesPolicy
) -> Callable[[Request], Awaitable[User | None]]:
    """A FastAPI dependency applying ``policy`` (see the module docstring).

    ``configured`` answers whether a user holds an unused code; ``None`` (recovery
    codes off) lets everyone through. The dependency gives the caller's user, or
    ``None`` for a caller without one, and raises :class:`GuardError` (403
    ``recovery_codes_required``, 503 ``unavailable``) or a 303 ``HTTPException``
    whose ``Location`` is the setup page.
    """

    async def require_recovery_codes(request: Request) -> User | None:
        try:
            user = await _caller(sessions, request.headers.get("authorization"))
        except KeystileError as error:
            raise GuardError(error) from None
        if user is None or configured is None or await configured(user):
            return user
        target = policy.redirect_for(request.headers.get("accept"))
        if target is None:
            raise GuardError(RecoveryCodesRequiredError())
        raise StarletteHTTPException(
            303, detail="Set up recovery codes first.", headers={"Location": target, **NO_STORE}
        )

    return require_recovery_codes


class RequireRecoveryCodesMiddleware:
    """Pure ASGI middleware: the recovery-code guard for every route it wraps.

    Behind Starlette's ``AuthenticationMiddleware`` with
    ``keystile.authentication_backend()`` it reads ``request.user``; without it,
    the ``Authorization: Bearer`` header. Answers as the module docstring says;
    other traffic (websockets, lifespan) passes through.

    Raises:
        ValueError: an ``on_missing`` or ``setup_path`` that is not allowed.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        keystile: Keystile,
        on_missing: str = HALT,
        setup_path: str = DEFAULT_SETUP_PATH,
    ) -> None:
        self.app = app
        self._keystile = keystile
        self._policy = MissingCodesPolicy(on_missing=on_missing, setup_path=setup_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._keystile.recovery_codes is None:
            await self.app(scope, receive, send)
            return
        refusal = await self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await refusal(scope, receive, send)

    async def _refusal(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        try:
            user = await self._user(scope, headers)
            if user is None or await self._keystile.recovery_codes_configured(user):
                return None
        except KeystileError as error:
            return error_response(error)
        target = self._policy.redirect_for(headers.get("accept"))
        if target is None:
            return error_response(RecoveryCodesRequiredError())
        return RedirectResponse(target, status_code=303, headers=NO_STORE)

    async def _user(self, scope: Scope, headers: Headers) -> User | None:
        if "user" in scope:  # AuthenticationMiddleware ran: its verdict stands
            found = scope["user"]
            return found.user if isinstance(found, SessionUser) else None
        return await _caller(self._keystile.runtime.sessions, headers.get("authorization"))
