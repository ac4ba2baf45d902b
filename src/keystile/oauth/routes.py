"""``POST /oauth/token``, ``POST /passwordless/start`` and the ``/.well-known`` documents.

The token endpoint takes ``application/x-www-form-urlencoded`` (RFC 6749
§4.3.2) and JSON (as Auth0 does); the client authenticates with
``client_secret_basic`` or ``client_secret_post`` (§2.3.1). Each grant hands
its credential to the sign-in flow and the answer to
:class:`~keystile.oauth.service.OAuthService`; every answer is ``no-store``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from keystile.errors import InvalidRequestError
from keystile.oauth import grants
from keystile.oauth.answers import (
    INVALID_OTP,
    INVALID_RECOVERY_CODE,
    WRONG_CREDENTIALS,
    WRONG_VERIFICATION_CODE,
    oauth_error,
)
from keystile.oauth.clients import OAuthError
from keystile.oauth.requirements import Requirements
from keystile.oauth.service import OAuthService, parse_scope
from keystile.store.clients import ClientRow
from keystile.web.guards import client_address
from keystile.web.headers import KEYSTILE_HEADERS

#: Largest token request read: far beyond any real one.
MAX_BODY_BYTES: Final = 16 * 1024
MAX_FIELD_LENGTH: Final = 2048

_ERROR_SCHEMA: Final = {
    "type": "object",
    "required": ["error", "error_description"],
    "properties": {
        "error": {"type": "string"},
        "error_description": {"type": "string"},
        "mfa_token": {"type": "string"},
    },
}
_TOKEN_SCHEMA: Final = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in", "scope"],
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string"},
        "expires_in": {"type": "integer"},
        "scope": {"type": "string"},
        "id_token": {"type": "string"},
        "refresh_token": {"type": "string"},
        "recovery_code": {"type": "string"},
    },
}
_FIELDS: Final = [
    "grant_type",
    "client_id",
    "client_secret",
    "username",
    "password",
    "realm",
    "scope",
    "audience",
    "otp",
    "mfa_token",
    "recovery_code",
    "refresh_token",
    "acr_values",
    "max_age",
]
# Strict, so that a request valid by the schema reaches client authentication: a made-up
# client is then 401 invalid_client, a known one gets its grant's answer.
_REQUEST_SCHEMA: Final = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        **{name: {"type": "string"} for name in _FIELDS},
        "grant_type": {"type": "string", "enum": list(grants.ALL)},
    },
    "additionalProperties": False,
}
_START_SCHEMA: Final = {
    "type": "object",
    "required": ["client_id", "connection", "email"],
    "properties": {
        **{name: {"type": "string"} for name in ("client_id", "client_secret", "email")},
        "connection": {"type": "string", "enum": ["email"]},
        "send": {"type": "string", "enum": ["code"]},
    },
    "additionalProperties": False,
}


def error_docs(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for RFC 6749 §5.2 error answers."""
    described = {
        400: "`invalid_request`, `invalid_grant`, `unsupported_grant_type`, "
        "`unauthorized_client`, `invalid_scope`, `unmet_authentication_requirements`.",
        401: "`invalid_client` (or `invalid_token` for a bad mfa_token).",
        403: "`mfa_required` with `mfa_token`.",
        404: "`not_found`.",
        413: "`request_too_large`.",
        415: "`unsupported_media_type`.",
        429: "`too_many_attempts`; see `Retry-After`.",
        503: "`temporarily_unavailable`.",
    }
    return {
        status: {
            "description": described[status],
            "content": {"application/json": {"schema": _ERROR_SCHEMA}},
        }
        for status in statuses
    }


async def read_body(request: Request) -> bytes:
    """The request body, read no further than :data:`MAX_BODY_BYTES`.

    These routes sit outside the route prefix that the body-size middleware
    guards, so the limit is kept here, while reading.

    Raises:
        OAuthError: ``request_too_large`` (413), declared or found while reading.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise OAuthError("request_too_large", "The request body is too large.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise OAuthError("request_too_large", "The request body is too large.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_parameters(request: Request) -> dict[str, str]:
    """The request's parameters, form-encoded or JSON; only string values are kept.

    Raises:
        InvalidRequestError: an unreadable body, a repeated parameter (RFC 6749 §3.2),
            or one too long.
        OAuthError: ``request_too_large`` (see :func:`read_body`).
    """
    body = await read_body(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    pairs: list[tuple[str, Any]]
    try:
        if content_type == "application/json":
            parsed = json.loads(body or b"{}")
            if not isinstance(parsed, dict):
                raise InvalidRequestError("The request body must be an object.")
            pairs = list(parsed.items())
        else:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidRequestError("The request body cannot be parsed.") from error
    parameters: dict[str, str] = {}
    for name, value in pairs:
        if name in parameters:
            raise InvalidRequestError("A parameter is repeated.")
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        text = str(value)
        if len(text) > MAX_FIELD_LENGTH:
            raise InvalidRequestError("A parameter is too long.")
        parameters[name] = text
    return parameters


def client_credentials(
    authorization: str | None, parameters: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """The client id and secret: HTTP Basic (RFC 6749 §2.3.1, form-encoded parts) or
    the body's ``client_id``/``client_secret``.

    Raises:
        OAuthError: ``invalid_request`` for credentials in both places, or a
            Basic header that cannot be decoded (``invalid_client``).
    """
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return parameters.get("client_id"), parameters.get("client_secret")
    if "client_secret" in parameters:
        raise OAuthError("invalid_request", "Use one client authentication method.")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "Client authentication failed.") from None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise OAuthError("invalid_client", "Client authentication failed.")
    body_id = parameters.get("client_id")
    if body_id is not None and body_id != unquote(client_id):
        raise OAuthError("invalid_request", "The client_id does not match.")
    return unquote(client_id), unquote(secret)


def _required(parameters: Mapping[str, str], *names: str) -> list[str]:
    missing = [name for name in names if not parameters.get(name)]
    if missing:
        raise OAuthError("invalid_request", f"Missing required parameter: {missing[0]}")
    return [parameters[name] for name in names]


def _requirements(parameters: Mapping[str, str]) -> Requirements:
    max_age = parameters.get("max_age")
    if max_age is not None and (not max_age.isdigit() or len(max_age) > 9):
        raise OAuthError("invalid_request", "max_age must be a number of seconds.")
    return Requirements(
        acr_values=tuple((parameters.get("acr_values") or "").split()),
        max_age=int(max_age) if max_age is not None else None,
    )


def _failure_text(grant_type: str) -> str:
    return {
        grants.PASSWORDLESS_OTP: WRONG_VERIFICATION_CODE,
        grants.MFA_OTP: INVALID_OTP,
        grants.MFA_RECOVERY_CODE: INVALID_RECOVERY_CODE,
        grants.REFRESH_TOKEN: "Unknown or invalid refresh token.",
    }.get(grant_type, WRONG_CREDENTIALS)


def _ok(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers=KEYSTILE_HEADERS)


def token_router(service: OAuthService) -> APIRouter:
    """``/oauth/token``, ``/passwordless/start`` and the discovery documents."""
    router = APIRouter(tags=["oauth"])

    @router.post(
        "/oauth/token",
        summary="OAuth 2.0 token endpoint (RFC 6749 §3.2) with Auth0's grants",
        responses={
            200: {
                "description": "Tokens (RFC 6749 §5.1), plus `recovery_code` after one was used.",
                "content": {"application/json": {"schema": _TOKEN_SCHEMA}},
            },
            **error_docs(400, 401, 403, 413, 429, 503),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {"schema": _REQUEST_SCHEMA},
                    "application/json": {"schema": _REQUEST_SCHEMA},
                },
            }
        },
    )
    async def token(request: Request) -> JSONResponse:
        grant_type = ""
        try:
            parameters = await read_parameters(request)
            grant_type = parameters.get("grant_type", "")
            if not grant_type:
                raise OAuthError("invalid_request", "Missing required parameter: grant_type")
            if grant_type not in grants.ALL:
                raise OAuthError("unsupported_grant_type", "Unsupported grant type.")
            client_id, secret = client_credentials(request.headers.get("authorization"), parameters)
            client = await service.clients.authenticate(client_id, secret, grant_type=grant_type)
            answer = await _grant(service, client, grant_type, parameters, client_address(request))
        except Exception as error:  # every failure is an RFC 6749 body
            return oauth_error(error, failed=_failure_text(grant_type))
        return _ok(answer)

    @router.post(
        "/passwordless/start",
        summary="Send a one-time code by email (Auth0's passwordless start)",
        responses={
            200: {"description": "The code was sent if the address may sign in."},
            **error_docs(400, 401, 429, 503),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _START_SCHEMA},
                    "application/x-www-form-urlencoded": {"schema": _START_SCHEMA},
                },
            }
        },
    )
    async def passwordless_start(request: Request) -> JSONResponse:
        try:
            parameters = await read_parameters(request)
            client_id, secret = client_credentials(request.headers.get("authorization"), parameters)
            await service.clients.authenticate(
                client_id, secret, grant_type=grants.PASSWORDLESS_OTP
            )
            (connection, email) = _required(parameters, "connection", "email")
            if connection != "email" or parameters.get("send", "code") != "code":
                raise OAuthError("invalid_request", "Only connection=email with send=code.")
            if service.otp is None:
                raise LookupError("the otp strategy is not enabled")
            await service.otp.request(email, client_address=client_address(request))
        except Exception as error:
            return oauth_error(error)
        return _ok({"email": email, "email_verified": False})

    @router.get("/.well-known/jwks.json", summary="The public keys that sign tokens (RFC 7517)")
    async def jwks() -> JSONResponse:
        try:
            keys = await service.signing.key_set()
        except Exception as error:
            return oauth_error(error)
        return JSONResponse(keys, headers={"Cache-Control": "public, max-age=60"})

    @router.get(
        "/.well-known/openid-configuration",
        summary="OpenID Connect Discovery 1.0 metadata",
    )
    async def openid_configuration(request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "issuer": service.issuer,
                "token_endpoint": f"{base}/oauth/token",
                "jwks_uri": f"{base}/.well-known/jwks.json",
                "mfa_challenge_endpoint": f"{base}/mfa/challenge",
                "grant_types_supported": list(grants.ALL),
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "none",
                ],
                "response_types_supported": ["token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256", "EdDSA", "RS256"],
                "scopes_supported": ["openid", "email", "offline_access"],
                "claims_supported": [
                    "iss",
                    "sub",
                    "aud",
                    "exp",
                    "iat",
                    "auth_time",
                    "amr",
                    "acr",
                    "email",
                ],
                "acr_values_supported": [grants.ACR_MFA, grants.ACR_SINGLE_FACTOR],
            },
            headers={"Cache-Control": "public, max-age=300"},
        )

    return router


async def _grant(
    service: OAuthService,
    client: ClientRow,
    grant_type: str,
    parameters: Mapping[str, str],
    address: str | None,
) -> dict[str, Any]:
    """Run one grant; its token response body."""
    flow = service.sign_in
    requirements = _requirements(parameters)
    if grant_type == grants.REFRESH_TOKEN:
        (refresh_token,) = _required(parameters, "refresh_token")
        scope = parameters.get("scope")
        answer = await service.refresh_grant(
            client,
            refresh_token,
            scope=parse_scope(scope) if scope else None,
            requirements=requirements,
        )
        return answer.body()
    scope = parse_scope(parameters.get("scope"))
    if grant_type in (grants.PASSWORD, grants.PASSWORD_REALM):
        username, password = _required(parameters, "username", "password")
        if grant_type == grants.PASSWORD_REALM:
            _required(parameters, "realm")
        result = await flow.password(username, password, client_address=address)
    elif grant_type == grants.PASSWORDLESS_OTP:
        username, otp = _required(parameters, "username", "otp")
        result = await flow.otp(username, otp, client_address=address)
    elif grant_type == grants.MFA_OTP:
        mfa_token, otp = _required(parameters, "mfa_token", "otp")
        # After /mfa/associate, the code confirms the new authenticator and finishes the
        # sign-in held for enrolment; otherwise it is the user's second factor.
        setup = await service.mfa.setup_token_for(mfa_token)
        if setup is not None:
            result = await flow.finish_enrolment(mfa_token, setup, otp, client_address=address)
        else:
            result = await flow.totp(mfa_token, otp, client_address=address)
    else:
        mfa_token, code = _required(parameters, "mfa_token", "recovery_code")
        # Auth0's grant always answers with a new code, whatever the service's mode.
        result = await flow.recovery_code(mfa_token, code, rotate=True, client_address=address)
    answer = await service.answer(client, result, scope=scope, requirements=requirements)
    return answer.body()
