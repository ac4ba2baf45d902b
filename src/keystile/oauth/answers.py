"""RFC 6749 §5.2 error bodies for the token endpoint and the MFA API.

Keystile's errors become OAuth ones here, not in :mod:`keystile.web.errors`:
``{"error": …, "error_description": …}`` with Auth0's description texts
where its clients match on them, ``mfa_token`` on ``mfa_required``,
``Retry-After`` on ``too_many_attempts`` (429), and ``Cache-Control:
no-store`` on every answer (RFC 6749 §5.1). A failed credential is
``invalid_grant``, one answer for an unknown user and a wrong secret.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi.responses import JSONResponse

from keystile.errors import (
    AuthenticationFailedError,
    InsufficientAuthenticationError,
    InvalidRequestError,
    KeystileError,
    NotFoundError,
    TooManyAttemptsError,
    UnauthenticatedError,
)
from keystile.oauth.clients import OAuthError
from keystile.web.errors import step_up_challenge
from keystile.web.headers import KEYSTILE_HEADERS

logger = logging.getLogger("keystile.oauth")

#: HTTP status of each OAuth error (RFC 6749 §5.2: 400 unless the client failed to
#: authenticate; Auth0: 403 for ``mfa_required``, 429 for ``too_many_attempts``).
STATUS: Final[dict[str, int]] = {
    "invalid_request": 400,
    "invalid_grant": 400,
    "invalid_scope": 400,
    "unauthorized_client": 400,
    "unsupported_grant_type": 400,
    "unmet_authentication_requirements": 400,
    "unsupported_challenge_type": 400,
    "invalid_client": 401,
    "invalid_token": 401,
    "mfa_required": 403,
    "access_denied": 403,
    "insufficient_user_authentication": 403,
    "insufficient_scope": 403,
    "not_found": 404,
    "request_too_large": 413,
    "too_many_attempts": 429,
    "server_error": 500,
    "temporarily_unavailable": 503,
}

#: Auth0's ``error_description`` for a failed credential, by what was checked.
WRONG_CREDENTIALS: Final = "Wrong email or password."
WRONG_VERIFICATION_CODE: Final = "Wrong email or verification code."
INVALID_OTP: Final = "Invalid otp_code."
INVALID_RECOVERY_CODE: Final = "Invalid recovery_code."


def oauth_response(
    code: str,
    description: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error answer with the RFC 6749 §5.2 body."""
    body: dict[str, Any] = {"error": code, "error_description": description, **(extra or {})}
    merged = {**KEYSTILE_HEADERS, **(headers or {})}
    return JSONResponse(body, status_code=STATUS.get(code, 400), headers=merged)


def oauth_error(error: Exception, *, failed: str = WRONG_CREDENTIALS) -> JSONResponse:
    """The answer for an error raised while serving an OAuth request.

    ``failed``: the ``error_description`` of a credential that did not verify
    (it depends on the grant: Auth0's clients show it).
    """
    if isinstance(error, OAuthError):
        extra = {"mfa_token": error.mfa_token} if error.mfa_token is not None else None
        headers = (
            {"WWW-Authenticate": 'Basic realm="keystile"'}
            if error.code == "invalid_client"
            else None
        )
        return oauth_response(error.code, error.message, extra=extra, headers=headers)
    if isinstance(error, AuthenticationFailedError):
        return oauth_response("invalid_grant", failed)
    if isinstance(error, TooManyAttemptsError):
        return oauth_response(
            "too_many_attempts",
            "Too many attempts. Try again later.",
            headers={"Retry-After": str(error.retry_after)},
        )
    if isinstance(error, UnauthenticatedError):
        return oauth_response(
            "invalid_token",
            "The mfa_token is invalid or expired.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if isinstance(error, InsufficientAuthenticationError):
        return oauth_response(
            "insufficient_user_authentication",
            error.message,
            headers={"WWW-Authenticate": step_up_challenge(error)},
        )
    if isinstance(error, NotFoundError):
        return oauth_response("not_found", error.message)
    if isinstance(error, InvalidRequestError):
        return oauth_response("invalid_request", error.message)
    if isinstance(error, LookupError):  # the strategy behind the grant is turned off
        return oauth_response("unsupported_grant_type", "This grant type is not enabled.")
    if isinstance(error, KeystileError) and error.code in {"unavailable", "schema_outdated"}:
        return oauth_response("temporarily_unavailable", "The service is temporarily unavailable.")
    logger.error("oauth request failed: %s", type(error).__name__)
    return oauth_response("server_error", "The server could not answer.")
