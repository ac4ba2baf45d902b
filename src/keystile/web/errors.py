"""The one place where errors become HTTP responses.

Every answer of an error has the body ``{"error": code, "message": text}``
(plus ``fields`` for ``invalid_request``) and ``Cache-Control: no-store``.
Unexpected exceptions are logged with their type only and answered with a
bare 500 body, so no detail (and no secret in an exception message) leaks.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from keystile.errors import (
    InvalidRequestError,
    KeystileError,
    TooManyAttemptsError,
    UnavailableError,
)

logger = logging.getLogger("keystile.web")

NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}

STATUS_BY_CODE: Final[dict[str, int]] = {
    "invalid_request": 400,
    "authentication_failed": 401,
    "unauthenticated": 401,
    "not_found": 404,
    "already_registered": 409,
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


def error_response(error: KeystileError) -> JSONResponse:
    """The response for a Keystile error."""
    status = STATUS_BY_CODE.get(error.code, 500)
    body: dict[str, Any] = {"error": error.code, "message": error.message}
    headers = dict(NO_STORE)
    if isinstance(error, InvalidRequestError) and error.fields:
        body["fields"] = error.fields
    if isinstance(error, TooManyAttemptsError):
        headers["Retry-After"] = str(error.retry_after)
    if error.code == "unauthenticated":
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return JSONResponse(body, status_code=status, headers=headers)


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


async def _on_keystile_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, KeystileError)
    return error_response(error)


async def _on_validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return error_response(validation_error(error))


async def _on_http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
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


async def _on_unexpected(_request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, OperationalError):
        return error_response(UnavailableError())
    # The type only: an exception message may quote input, and input may be a secret.
    logger.error("unexpected %s while handling a request", type(error).__name__)
    return JSONResponse(
        {"error": "internal_error", "message": "Internal error."},
        status_code=500,
        headers=dict(NO_STORE),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make ``app`` answer every error in the Keystile shape."""
    app.add_exception_handler(KeystileError, _on_keystile_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
