"""The recovery-code strategy's routes: verify (second factor or step-up), MFA reset,
generate and status.

``POST {prefix}/user/recovery_code/verify`` with ``{"user": {"mfa_token", "code"}}``
finishes a sign-in held for a second factor; with a bearer token and
``{"user": {"code"}}`` it steps up. ``POST …/reset_mfa`` (``mfa_token`` +
code) signs in with one factor and removes the second. Answers carry
``recovery_code_used_at`` and ``recovery_codes_remaining`` (and the new
``recovery_code`` when codes rotate on use).

``POST …/generate`` (bearer, a second factor passed within
:data:`RECENT_SECOND_FACTOR`) answers 201 with a new batch, shown this once,
that replaced every earlier code in one transaction; the user is told by a
notice (which never holds a code). ``GET …/status`` (bearer) says how many
codes remain.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from fastapi import APIRouter, Depends, Request

from keystile.clock import Clock
from keystile.flows.notices import Notices
from keystile.flows.sessions import Session, Sessions
from keystile.flows.sign_in import SignInFlow
from keystile.strategies.recovery_code.service import RecoveryCodeService
from keystile.web.assurance import recent_auth_dependency
from keystile.web.guards import client_address, session_dependency, verify_bearer
from keystile.web.responses import NoStoreRoute, error_responses
from keystile.web.schemas import (
    RecoveryAuthenticatedBody,
    RecoveryCodesBody,
    RecoveryCodeStatusBody,
    RecoveryResetBody,
    RecoveryVerifyBody,
    SignInAnswer,
    recovery_bodies,
    sign_in_answer,
)

#: How recently a session must have passed a second factor to generate codes: a
#: password-only or stale session must not be able to replace a user's codes.
RECENT_SECOND_FACTOR: Final = timedelta(minutes=5)


def recovery_code_router(
    sign_in_flow: SignInFlow,
    sessions: Sessions,
    recovery: RecoveryCodeService,
    *,
    clock: Clock,
    notices: Notices | None = None,
) -> APIRouter:
    """Verify, reset, generate and status; the flow and the service do the work.

    ``clock`` judges how recent a second factor is; ``notices`` (when given)
    tells the user a new batch was generated.
    """
    router = APIRouter(prefix="/user/recovery_code", route_class=NoStoreRoute, tags=["recovery"])
    current_session = session_dependency(sessions)
    recent_second_factor = recent_auth_dependency(
        current_session, clock, RECENT_SECOND_FACTOR, second_factor=True
    )

    # The bodies state the configured code length (KEYSTILE_RECOVERY_CODE_LENGTH).
    verify_body, reset_body = recovery_bodies(recovery.config.length)

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

    verify.__annotations__["body"] = verify_body
    router.post(
        "/verify",
        response_model=RecoveryAuthenticatedBody,
        response_model_exclude_none=True,
        responses=error_responses(400, 401, 429, 503),
        summary="Finish a sign-in with a recovery code (mfa_token), or step up (bearer token)",
    )(verify)

    async def reset_mfa(body: RecoveryResetBody, request: Request) -> SignInAnswer:
        result = await sign_in_flow.reset_mfa(
            body.user.mfa_token, body.user.code, client_address=client_address(request)
        )
        return sign_in_answer(result)

    reset_mfa.__annotations__["body"] = reset_body
    router.post(
        "/reset_mfa",
        response_model=SignInAnswer,
        responses=error_responses(400, 401, 429, 503),
        summary="Sign in with a recovery code and remove the second factor (re-enrol after)",
    )(reset_mfa)

    @router.post(
        "/generate",
        status_code=201,
        response_model=RecoveryCodesBody,
        responses=error_responses(401, 403, 503),
        summary="Replace the user's recovery codes by a new batch (a recent second factor)",
    )
    async def generate(session: Session = Depends(recent_second_factor)) -> RecoveryCodesBody:
        batch = await recovery.generate(session.user)
        if notices is not None:
            notices.recovery_codes_generated(session.user)
        return RecoveryCodesBody(recovery_codes=list(batch.codes), generated_at=batch.generated_at)

    @router.get(
        "/status",
        response_model=RecoveryCodeStatusBody,
        responses=error_responses(401, 503),
        summary="How many of the user's recovery codes remain",
    )
    async def status(session: Session = Depends(current_session)) -> RecoveryCodeStatusBody:
        found = await recovery.status(session.user)
        return RecoveryCodeStatusBody(
            configured=found.configured,
            remaining=found.remaining,
            total=found.total,
            generated_at=found.generated_at,
            low=found.low,
        )

    return router
