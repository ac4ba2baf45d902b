"""HTTP face of the OTP strategy: ``POST {prefix}/user/otp/{request,sign_in}``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from keystile.flows.sign_in import SignInFlow
from keystile.strategies.otp.service import OtpService
from keystile.web.guards import client_address
from keystile.web.responses import NoStoreRoute, error_responses
from keystile.web.schemas import (
    OtpRequestBody,
    OtpSignInBody,
    SignInAnswer,
    StatusBody,
    sign_in_answer,
)


def otp_router(service: OtpService, sign_in_flow: SignInFlow) -> APIRouter:
    """Routes for ``service``; a sign-in goes through ``sign_in_flow``."""
    router = APIRouter(prefix="/user/otp", route_class=NoStoreRoute, tags=["otp"])

    @router.post(
        "/request",
        response_model=StatusBody,
        responses=error_responses(400, 429, 503),
        summary="Send a one-time sign-in code (same answer whether or not the account exists)",
    )
    async def request_code(body: OtpRequestBody, request: Request) -> StatusBody:
        await service.request(body.user.email, client_address=client_address(request))
        return StatusBody()

    @router.post(
        "/sign_in",
        response_model=SignInAnswer,
        responses=error_responses(400, 401, 429, 503),
        summary="Sign in with a one-time code",
    )
    async def sign_in(body: OtpSignInBody, request: Request) -> SignInAnswer:
        result = await sign_in_flow.otp(
            body.user.email, body.user.otp, client_address=client_address(request)
        )
        return sign_in_answer(result)

    return router
