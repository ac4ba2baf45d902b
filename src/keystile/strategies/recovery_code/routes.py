"""The recovery-code strategy's routes: verify (second factor or step-up) and MFA reset.

``POST {prefix}/user/recovery_code/verify`` with ``{"user": {"mfa_token", "code"}}``
finishes a sign-in held for a second factor; with a bearer token and
``{"user": {"code"}}`` it steps up. ``POST …/reset_mfa`` (``mfa_token`` +
code) signs in with one factor and removes the second. Answers carry
``recovery_code_used_at`` and ``recovery_codes_remaining`` (and the new
``recovery_code`` when codes rotate on use).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from keystile.errors import UnauthenticatedError
from keystile.flows.sessions import Sessions
from keystile.flows.sign_in import SignInFlow
from keystile.web.guards import client_address, verify_bearer
from keystile.web.responses import NoStoreRoute, error_responses
from keystile.web.schemas import AuthenticatedBody, RecoveryAuthenticatedBody, RecoveryVerifyBody


def recovery_code_router(sign_in_flow: SignInFlow, sessions: Sessions) -> APIRouter:
    """Verify and reset; the flow does the work."""
    router = APIRouter(prefix="/user/recovery_code", route_class=NoStoreRoute, tags=["recovery"])

    @router.post(
        "/verify",
        response_model=RecoveryAuthenticatedBody,
        response_model_exclude_none=True,
        responses=error_responses(400, 401, 429, 503),
        summary="Finish a sign-in with a recovery code (mfa_token), or step up (bearer token)",
    )
    async def verify(body: RecoveryVerifyBody, request: Request) -> RecoveryAuthenticatedBody:
        address = client_address(request)
        if body.user.mfa_token is not None:
            result = await sign_in_flow.recovery_code(
                body.user.mfa_token, body.user.code, client_address=address
            )
        else:
            session = await verify_bearer(sessions, request.headers.get("authorization"))
            result = await sign_in_flow.step_up_recovery_code(
                session, body.user.code, client_address=address
            )
        return RecoveryAuthenticatedBody.of_recovery(result)

    @router.post(
        "/reset_mfa",
        response_model=AuthenticatedBody,
        responses=error_responses(400, 401, 429, 503),
        summary="Sign in with a recovery code and remove the second factor (re-enrol after)",
    )
    async def reset_mfa(body: RecoveryVerifyBody, request: Request) -> AuthenticatedBody:
        if body.user.mfa_token is None:
            raise UnauthenticatedError()
        result = await sign_in_flow.reset_mfa(
            body.user.mfa_token, body.user.code, client_address=client_address(request)
        )
        return AuthenticatedBody.of(result)

    return router
