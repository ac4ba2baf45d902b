"""Keystile's route class and the documented error answers shared by every router."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from keystile.web.errors import keystile_answer
from keystile.web.headers import KEYSTILE_HEADERS
from keystile.web.schemas import ErrorBody

_DESCRIPTIONS = {
    400: "`invalid_request`: malformed JSON, missing or mistyped fields (`fields` says which).",
    401: "`authentication_failed` or `unauthenticated`.",
    403: (
        "`insufficient_authentication`: the session lacks a recent enough second factor "
        "(or, behind `require_recovery_codes`, `recovery_codes_required`: the user holds no "
        "unused recovery code)."
    ),
    404: "`not_found`.",
    409: "`already_registered`, or `already_enrolled` (TOTP is already on).",
    429: "`too_many_attempts`: a brute-force limit holds; see `Retry-After`.",
    503: "`unavailable`: storage or limiter unreachable; nothing was accepted.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the error statuses a route can answer."""
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses
    }


class KeystileRoute(APIRoute):
    """A Keystile route: it answers its own errors, and every answer carries Keystile's headers.

    Whatever the handler raises (a :class:`~keystile.errors.KeystileError`,
    FastAPI's validation failure, an ``HTTPException`` such as a body that
    cannot be parsed, or anything unexpected) is mapped here by
    :func:`keystile.web.errors.answer`, so Keystile needs no app-wide
    exception handler and a host app's own errors keep the host's shape. An
    unexpected error stops here as one log line: nothing is re-raised for the
    server to print a traceback of.

    Every answer, success or error, carries ``Cache-Control: no-store`` (it
    may hold a token or say something about an account), ``nosniff`` and
    ``Referrer-Policy: no-referrer``; one whose failure was logged also an
    ``X-Request-Id`` that the log line names.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def keystile_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as error:  # every error gets a Keystile answer
                return keystile_answer(error)
            response.headers.update(KEYSTILE_HEADERS)
            return response

        return keystile_handler


#: The name routers used before the class mapped errors too; kept for them.
NoStoreRoute = KeystileRoute
