"""The TOTP strategy's verify route: the second step of a sign-in, or a step-up.

``POST {prefix}/user/totp/verify`` with ``{"user": {"mfa_token", "code"}}``
finishes a sign-in held for a second factor; with a bearer token and
``{"user": {"code"}}`` it re-verifies the signed-in user (step-up). Both
answer API.md's authenticated body.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from keystile.flows.sessions import Sessions
from keystile.flows.sign_in import SignInFlow
from keystile.web.guards import client_address, verify_bearer
from keystile.web.responses import NoStoreRoute, error_responses
from keystile.web.schemas import AuthenticatedBody, TotpVerifyBody


def totp_router(sign_in_flow: SignInFlow, sessions: Sessions) -> APIRouter:
    """The verify route; the flow does the work."""
    router = APIRouter(prefix="/user/totp", route_class=NoStoreRoute, tags=["totp"])

    @router.post(
        "/verify",
        response_model=AuthenticatedBody,
        responses=error_responses(400, 401, 429, 503),
        summary="Finish a sign-in with a TOTP code (mfa_token), or step up (bearer token)",
    )
    async def verify(body: TotpVerifyBody, request: Request) -> AuthenticatedBody:
        address = client_address(request)
        if body.user.mfa_token is not None:
            result = await sign_in_flow.totp(
                body.user.mfa_token, body.user.code, client_address=address
            )
        else:
            session = await verify_bearer(sessions, request.headers.get("authorization"))
            result = await sign_in_flow.step_up_totp(
                session, body.user.code, client_address=address
            )
        return AuthenticatedBody.of(result)

    return router
