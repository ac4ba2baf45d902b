"""The one place where errors become HTTP responses.

Every answer of an error has the body ``{"error": code, "message": text}``
(plus ``fields`` for ``invalid_request``) and ``Cache-Control: no-store``.
Unexpected exceptions are logged as one line (their type and the request id,
never their message or a traceback: a message may quote input, and on
PostgreSQL a statement's text holds a code's hash) and answered with a bare
500 body, so no detail leaks.

The mapping applies where Keystile answers: inside its own routes
(:class:`keystile.web.responses.KeystileRoute`) and, in the standalone service
only, app-wide (:func:`install_error_handlers`). A host app's own errors never
pass through here.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any, Final

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from keystile.errors import (
    InsufficientAuthenticationError,
    InvalidRequestError,
    KeystileError,
    TooManyAttemptsError,
    UnavailableError,
)
from keystile.web.headers import KEYSTILE_HEADERS, NO_STORE, REQUEST_ID_HEADER, new_request_id

logger = logging.getLogger("keystile.web")

STATUS_BY_CODE: Final[dict[str, int]] = {
    "invalid_request": 400,
    "authentication_failed": 401,
    "unauthenticated": 401,
    "insufficient_authentication": 403,
    "recovery_codes_required": 403,
    "not_found": 404,
    "already_registered": 409,
    "already_enrolled": 409,
    "too_many_attempts": 429,
    "unavailable": 503,
    "send_failed": 503,
    "schema_outdated": 503,
    "configuration_error": 500,
}

_HTTP_CODES: Final[dict[int, str]] = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}

#: PostgreSQL's SQLSTATE for "relation does not exist".
_UNDEFINED_TABLE: Final = "42P01"

MISSING_SCHEMA_HINT: Final = (
    "Keystile's database tables are missing or outdated: run `keystile db upgrade` "
    "(or await keystile.prepare() at start-up, which migrates in development mode)"
)


class GuardError(StarletteHTTPException):
    """A guard refused a request: a :class:`KeystileError` raised as an HTTP exception.

    Raised by Keystile's guards on a host's routes. Being an ``HTTPException``,
    it answers its status and headers (401 with ``WWW-Authenticate: Bearer``)
    in any app; :meth:`keystile.Keystile.install` adds a handler for this one
    type so the body also takes the Keystile shape (``{"error":
    "unauthenticated", ...}``). The host's own HTTP exceptions keep their handler.
    """

    def __init__(self, error: KeystileError, *, headers: Mapping[str, str] | None = None) -> None:
        self.error = error
        merged = {**_error_headers(error), **(headers or {})}
        super().__init__(STATUS_BY_CODE.get(error.code, 500), error.message, merged)


def _error_headers(error: KeystileError) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(error, TooManyAttemptsError):
        headers["Retry-After"] = str(error.retry_after)
    if error.code == "unauthenticated":
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if isinstance(error, InsufficientAuthenticationError):
        headers["WWW-Authenticate"] = step_up_challenge(error)
    return headers


def _quoted(value: str) -> str:
    """``value`` as an RFC 6750 quoted-string: printable ASCII without ``"`` and ``\\``."""
    kept = "".join(char for char in value if " " <= char <= "~" and char not in '"\\')
    return f'"{kept}"'


def step_up_challenge(error: InsufficientAuthenticationError) -> str:
    """The RFC 9470 §3 challenge for a session that is not strong or recent enough.

    ``Bearer error="insufficient_user_authentication", error_description="…"``
    plus ``acr_values="…"`` (the context the call wants) and/or
    ``max_age="<seconds>"`` (how recent the sign-in must be), quoted as in
    the RFC's examples.
    """
    params = [
        'error="insufficient_user_authentication"',
        f"error_description={_quoted(error.message)}",
    ]
    if error.acr_values is not None:
        params.append(f"acr_values={_quoted(error.acr_values)}")
    if error.max_age is not None:
        params.append(f'max_age="{int(error.max_age)}"')
    return "Bearer " + ", ".join(params)


def error_response(
    error: KeystileError, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The response for a Keystile error (``headers`` override the usual ones)."""
    status = STATUS_BY_CODE.get(error.code, 500)
    body: dict[str, Any] = {"error": error.code, "message": error.message}
    if isinstance(error, InvalidRequestError) and error.fields:
        body["fields"] = error.fields
    merged = {**NO_STORE, **_error_headers(error), **(headers or {})}
    return JSONResponse(body, status_code=status, headers=merged)


def _field_name(loc: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in loc if part != "body"]
    return ".".join(parts) or "body"


def validation_error(error: RequestValidationError) -> InvalidRequestError:
    """Turn FastAPI's validation failure into ``invalid_request`` with a reason per field."""
    fields: dict[str, str] = {}
    for item in error.errors():
        loc = tuple(item.get("loc", ()))
        if item.get("type") == "json_invalid":
            fields["body"] = "is not valid JSON"
            continue
        fields.setdefault(_field_name(loc), str(item.get("msg", "is invalid")))
    return InvalidRequestError("The request body is malformed.", fields)


def is_missing_schema(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is the database saying a table does not exist.

    The sign of a database nobody migrated: SQLite's ``no such table`` (which
    the store reports as ``unavailable``) or PostgreSQL's SQLSTATE 42P01.
    Judged from the exception alone, without another trip to the database.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        original = getattr(current, "orig", None)
        for candidate in (current, original):
            if isinstance(candidate, sqlite3.OperationalError) and str(candidate).startswith(
                "no such table"
            ):
                return True
            if getattr(candidate, "sqlstate", None) == _UNDEFINED_TABLE:
                return True
        current = current.__cause__ or current.__context__
    return False


def _http_error_response(error: StarletteHTTPException) -> JSONResponse:
    if isinstance(error, GuardError):
        return error_response(error.error, headers=error.headers)
    if error.status_code == 400:
        # The framework's own parse failure (e.g. a body that is not UTF-8).
        return error_response(
            InvalidRequestError("The request body is malformed.", {"body": "cannot be parsed"})
        )
    code = _HTTP_CODES.get(error.status_code, "http_error")
    return JSONResponse(
        {"error": code, "message": str(error.detail)},
        status_code=error.status_code,
        headers={**NO_STORE, **(error.headers or {})},
    )


def answer(error: Exception) -> Response:
    """The Keystile-shaped answer to ``error``, raised while handling a Keystile request.

    An unexpected error is logged as one line naming its type and a new
    request id; a database without Keystile's tables as one line naming
    ``keystile db upgrade``. Such an answer names the same id in
    ``X-Request-Id`` and says nothing more than its code.
    """
    if is_missing_schema(error):
        identifier = new_request_id()
        logger.error("%s; request_id=%s", MISSING_SCHEMA_HINT, identifier)
        return error_response(UnavailableError(), headers={REQUEST_ID_HEADER: identifier})
    if isinstance(error, KeystileError):
        return error_response(error)
    if isinstance(error, RequestValidationError):
        return error_response(validation_error(error))
    if isinstance(error, StarletteHTTPException):
        return _http_error_response(error)
    if isinstance(error, OperationalError):
        return error_response(UnavailableError())
    identifier = new_request_id()
    logger.error("internal error: %s; request_id=%s", type(error).__name__, identifier)
    return JSONResponse(
        {"error": "internal_error", "message": "Internal error."},
        status_code=500,
        headers={**NO_STORE, REQUEST_ID_HEADER: identifier},
    )


def keystile_answer(error: Exception) -> Response:
    """:func:`answer` with every Keystile header (see :mod:`keystile.web.headers`)."""
    response = answer(error)
    response.headers.update(KEYSTILE_HEADERS)
    return response


async def _on_error(_request: Request, error: Exception) -> Response:
    return keystile_answer(error)


async def on_guard_error(_request: Request, error: Exception) -> Response:
    """A host app's handler for :class:`GuardError` (installed by ``Keystile.install``)."""
    assert isinstance(error, GuardError)
    return error_response(error.error, headers=error.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Make the standalone service answer every error in the Keystile shape.

    For the app Keystile owns (:func:`keystile.web.app.create_app`) only: it
    covers what happens outside any route (404 and 405 for unknown paths).
    Errors inside Keystile's routes are mapped by the route itself, and
    exceptions nobody handled by :class:`keystile.web.edge.EdgeMiddleware`.
    """
    for kind in (KeystileError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(kind, _on_error)
