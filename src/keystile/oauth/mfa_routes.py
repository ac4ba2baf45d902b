"""Auth0's MFA API: ``GET /mfa/authenticators`` and ``POST /mfa/challenge``.

The ``mfa_token`` of an ``mfa_required`` answer is the bearer token (or, for
``/mfa/challenge``, a body field, as Auth0 takes it). Errors are RFC 6749
§5.2 bodies (:mod:`keystile.oauth.answers`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from keystile.errors import UnauthenticatedError
from keystile.oauth.answers import oauth_error, oauth_response
from keystile.oauth.mfa import MfaApi
from keystile.oauth.routes import error_docs, read_parameters
from keystile.web.guards import bearer_token
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
        except ValueError:
            return oauth_response(
                "unsupported_challenge_type", "The user has no authenticator for this challenge."
            )
        except Exception as error:
            return oauth_error(error)
        return JSONResponse({"challenge_type": kind}, headers=KEYSTILE_HEADERS)

    return router
