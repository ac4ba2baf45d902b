"""HTTP face of TOTP enrolment: ``POST {prefix}/user/totp/{setup,confirm_setup,disable}``.

Every route needs a bearer token. Whether the session passed a second factor
recently enough to replace or remove an authenticator is read from its
claims (``amr`` holds ``mfa`` and ``auth_time`` is at most five minutes old);
the service decides what that allows.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from keystile.flows.sessions import Session, Sessions
from keystile.strategies.totp.enrolment import TotpEnrolment
from keystile.web.guards import client_address, session_dependency
from keystile.web.responses import NoStoreRoute, error_responses
from keystile.web.schemas import (
    TotpConfirmSetupBody,
    TotpDisabledBody,
    TotpEnabledBody,
    TotpSetupBody,
)


def totp_enrolment_router(enrolment: TotpEnrolment, sessions: Sessions) -> APIRouter:
    """Enrolment routes for ``enrolment``; callers are authenticated through ``sessions``."""
    router = APIRouter(prefix="/user/totp", route_class=NoStoreRoute, tags=["totp"])
    current_session = session_dependency(sessions)

    @router.post(
        "/setup",
        response_model=TotpSetupBody,
        responses=error_responses(401, 409, 503),
        summary="Start enrolling an authenticator app (confirm it with a code)",
    )
    async def setup(request: Request, session: Session = Depends(current_session)) -> TotpSetupBody:
        started = await enrolment.setup(
            session.user,
            second_factor_recent=enrolment.recent_second_factor(session.claims),
            client_address=client_address(request),
        )
        return TotpSetupBody(
            setup_token=started.setup_token,
            totp_url=started.totp_url,
            secret=started.secret,
            qr_svg=started.qr_svg,
        )

    @router.post(
        "/confirm_setup",
        response_model=TotpEnabledBody,
        response_model_exclude_none=True,
        responses=error_responses(400, 401, 429, 503),
        summary="Turn on two-step verification with a code from the app being enrolled",
    )
    async def confirm_setup(
        body: TotpConfirmSetupBody, request: Request, session: Session = Depends(current_session)
    ) -> TotpEnabledBody:
        enabled = await enrolment.confirm_setup(
            session.user,
            body.user.setup_token,
            body.user.code,
            client_address=client_address(request),
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
