"""The TOTP strategy's HTTP face: verify (second step or step-up) and enrolment.

``POST {prefix}/user/totp/verify`` with ``{"user": {"mfa_token", "code"}}``
finishes a sign-in held for a second factor; with a bearer token and
``{"user": {"code"}}`` it re-verifies the signed-in user (step-up). Both
answer API.md's authenticated body.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from keystile.flows.enrolment import EnrolmentFlow
from keystile.flows.sessions import Session, Sessions
from keystile.flows.sign_in import SignInFlow
from keystile.strategies.totp.enrolment import TotpEnrolment
from keystile.web.guards import client_address, session_dependency, verify_bearer
from keystile.web.responses import NoStoreRoute, error_responses
from keystile.web.schemas import (
    AuthenticatedBody,
    EnrolledBody,
    TotpConfirmSetupBody,
    TotpDisabledBody,
    TotpEnabledBody,
    TotpSetupBody,
    TotpSetupRequest,
    TotpVerifyBody,
)


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


def totp_enrolment_router(
    enrolment: TotpEnrolment,
    enrolment_flow: EnrolmentFlow,
    sign_in_flow: SignInFlow,
    sessions: Sessions,
) -> APIRouter:
    """Setup, confirm_setup and disable: confirmation goes through ``enrolment_flow``,
    which also hands out a first enrolment's recovery codes.

    With a bearer token they act for the signed-in user. Under the ``required`` MFA
    policy a sign-in is held for enrolment: setup and confirm_setup then take its
    ``mfa_token`` instead, and confirming finishes the sign-in (``sign_in_flow``).

    Whether the session passed a second factor recently enough to replace or
    remove an authenticator is read from its claims (``amr`` holds ``mfa`` and
    ``auth_time`` is at most five minutes old); the service decides what that allows.
    """
    router = APIRouter(prefix="/user/totp", route_class=NoStoreRoute, tags=["totp"])
    current_session = session_dependency(sessions)

    @router.post(
        "/setup",
        response_model=TotpSetupBody,
        responses=error_responses(401, 409, 503),
        summary="Start enrolling an authenticator app (confirm it with a code)",
    )
    async def setup(request: Request, body: TotpSetupRequest | None = None) -> TotpSetupBody:
        address = client_address(request)
        if body is not None and body.user.mfa_token is not None:
            started = await sign_in_flow.start_enrolment(
                body.user.mfa_token, client_address=address
            )
        else:
            session = await verify_bearer(sessions, request.headers.get("authorization"))
            started = await enrolment.setup(
                session.user,
                second_factor_recent=enrolment.recent_second_factor(session.claims),
                client_address=address,
            )
        return TotpSetupBody(
            setup_token=started.setup_token,
            totp_url=started.totp_url,
            secret=started.secret,
            qr_svg=started.qr_svg,
        )

    @router.post(
        "/confirm_setup",
        response_model=TotpEnabledBody | EnrolledBody,
        response_model_exclude_none=True,
        responses=error_responses(400, 401, 429, 503),
        summary="Turn on two-step verification with a code from the app being enrolled",
    )
    async def confirm_setup(
        body: TotpConfirmSetupBody, request: Request
    ) -> TotpEnabledBody | EnrolledBody:
        address = client_address(request)
        fields = body.user
        if fields.mfa_token is not None:
            result = await sign_in_flow.finish_enrolment(
                fields.mfa_token, fields.setup_token, fields.code, client_address=address
            )
            codes = result.details.get("recovery_codes")
            return EnrolledBody(
                **AuthenticatedBody.of(result).model_dump(),
                recovery_codes=list(codes) if isinstance(codes, tuple) and codes else None,
            )
        session = await verify_bearer(sessions, request.headers.get("authorization"))
        enabled = await enrolment_flow.confirm_setup(
            session.user, fields.setup_token, fields.code, client_address=address
        )
        return TotpEnabledBody(recovery_codes=list(enabled.recovery_codes) or None)

    @router.post(
        "/disable",
        response_model=TotpDisabledBody,
        responses=error_responses(401, 403, 503),
        summary="Turn off two-step verification (needs a recent second factor)",
    )
    async def disable(
        request: Request, session: Session = Depends(current_session)
    ) -> TotpDisabledBody:
        await enrolment.disable(
            session.user,
            second_factor_recent=enrolment.recent_second_factor(session.claims),
            client_address=client_address(request),
        )
        return TotpDisabledBody()

    return router
