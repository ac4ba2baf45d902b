"""Auth0's MFA API: ``GET /mfa/authenticators``, ``POST /mfa/challenge``,
``POST /mfa/associate`` and ``DELETE /mfa/authenticators/{id}``.

The ``mfa_token`` of an ``mfa_required`` answer is the bearer token (or, for
``/mfa/challenge``, a body field, as Auth0 takes it); removing an
authenticator takes an access token with a recent second factor instead.
Errors are RFC 6749 §5.2 bodies (:mod:`keystile.oauth.answers`).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from keystile.errors import InvalidRequestError, UnauthenticatedError
from keystile.oauth.answers import oauth_error
from keystile.oauth.mfa import MfaApi
from keystile.oauth.routes import error_docs, read_body, read_parameters
from keystile.web.guards import bearer_token, client_address
from keystile.web.headers import KEYSTILE_HEADERS


def mfa_router(api: MfaApi) -> APIRouter:
    """The MFA API routes."""
    router = APIRouter(prefix="/mfa", tags=["mfa"])

    @router.get(
        "/authenticators",
        summary="The authenticators of the sign-in held by the bearer mfa_token",
        responses={
            200: {
                "description": "`[{id, authenticator_type, active}]`",
                "content": {
                    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}
                },
            },
            **error_docs(401, 503),
        },
    )
    async def list_authenticators(request: Request) -> JSONResponse:
        try:
            token = bearer_token(request.headers.get("authorization"))
            if token is None:
                raise UnauthenticatedError()
            found = await api.authenticators(token)
        except Exception as error:
            return oauth_error(error)
        body: list[dict[str, Any]] = [
            {"id": a.id, "authenticator_type": a.authenticator_type, "active": a.active}
            for a in found
        ]
        return JSONResponse(body, headers=KEYSTILE_HEADERS)

    @router.post(
        "/challenge",
        summary="Ask for a second factor of the sign-in held by mfa_token",
        responses={
            200: {"description": '`{"challenge_type": "otp"}`'},
            **error_docs(400, 401, 503),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["mfa_token"],
                            "additionalProperties": False,
                            "properties": {
                                name: {"type": "string"}
                                for name in (
                                    "mfa_token",
                                    "client_id",
                                    "client_secret",
                                    "challenge_type",
                                )
                            },
                        }
                    }
                },
            }
        },
    )
    async def challenge(request: Request) -> JSONResponse:
        try:
            parameters = await read_parameters(request)
            token = parameters.get("mfa_token") or bearer_token(
                request.headers.get("authorization")
            )
            if not token:
                raise UnauthenticatedError()
            kind = await api.challenge(token, parameters.get("challenge_type", "otp"))
        except Exception as error:
            return oauth_error(error)
        return JSONResponse({"challenge_type": kind}, headers=KEYSTILE_HEADERS)

    @router.post(
        "/associate",
        summary="Start enrolling an OTP authenticator (bearer: an mfa_token held for enrolment)",
        responses={
            200: {"description": "`{authenticator_type, secret, barcode_uri, recovery_codes}`"},
            **error_docs(400, 401, 403, 503),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["authenticator_types"],
                            "properties": {
                                "authenticator_types": {
                                    "type": "array",
                                    "items": {"type": "string", "enum": ["otp"]},
                                    "minItems": 1,
                                },
                            },
                            "additionalProperties": False,
                        }
                    }
                },
            }
        },
    )
    async def associate(request: Request) -> JSONResponse:
        try:
            token = bearer_token(request.headers.get("authorization"))
            if token is None:
                raise UnauthenticatedError()
            await _authenticator_types(request)
            association = await api.associate(token, client_address=client_address(request))
        except Exception as error:
            return oauth_error(error)
        body = {
            "authenticator_type": "otp",
            "secret": association.secret,
            "barcode_uri": association.barcode_uri,
            "recovery_codes": list(association.recovery_codes),
        }
        return JSONResponse(body, headers=KEYSTILE_HEADERS)

    @router.delete(
        "/authenticators/{authenticator_id}",
        status_code=204,
        summary="Remove an authenticator (bearer: an access token with a recent second factor)",
        responses={204: {"description": "Removed."}, **error_docs(401, 403, 404, 503)},
    )
    async def delete_authenticator(authenticator_id: str, request: Request) -> Response:
        try:
            token = bearer_token(request.headers.get("authorization"))
            if token is None:
                raise UnauthenticatedError()
            await api.delete_authenticator(
                token, authenticator_id, client_address=client_address(request)
            )
        except Exception as error:
            return oauth_error(error)
        return Response(status_code=204, headers=KEYSTILE_HEADERS)

    return router


async def _authenticator_types(request: Request) -> list[str]:
    """``authenticator_types`` of an associate request: it must ask for ``otp``.

    Raises:
        InvalidRequestError: an unreadable body, or no ``otp`` among the types.
    """
    body = await read_body(request)
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        raise InvalidRequestError("The request body is not JSON.") from None
    types = parsed.get("authenticator_types") if isinstance(parsed, dict) else None
    if not isinstance(types, list) or "otp" not in types:
        raise InvalidRequestError('Only "authenticator_types": ["otp"] is supported.')
    return [str(item) for item in types]
