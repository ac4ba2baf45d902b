"""The password strategy over HTTP: ``{prefix}/user/password/{sign_in,register,confirm}``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from keystile.flows.sign_in import SignInFlow
from keystile.strategies.password.service import PasswordService
from keystile.web.guards import client_address
from keystile.web.responses import NoStoreRoute, error_responses
from keystile.web.schemas import (
    ConfirmRegistrationBody,
    PasswordBody,
    SignInAnswer,
    StatusBody,
    sign_in_answer,
)


def password_router(service: PasswordService, sign_in_flow: SignInFlow) -> APIRouter:
    """Routes for ``service``; ``register`` exists only when registration is enabled.

    Sign-ins (with a password, or by confirming a registration) go through ``sign_in_flow``.
    """
    router = APIRouter(prefix="/user/password", route_class=NoStoreRoute, tags=["password"])

    @router.post(
        "/sign_in",
        response_model=SignInAnswer,
        responses=error_responses(400, 401, 429, 503),
        summary="Sign in with email and password",
    )
    async def sign_in(body: PasswordBody, request: Request) -> SignInAnswer:
        result = await sign_in_flow.password(
            body.user.email, body.user.password, client_address=client_address(request)
        )
        return sign_in_answer(result)

    if service.config.registration_enabled:

        @router.post(
            "/register",
            response_model=StatusBody,
            responses=error_responses(400, 429, 503),
            summary="Ask for an account with a password (a code confirms the address)",
        )
        async def register(body: PasswordBody, request: Request) -> StatusBody:
            await service.register(
                body.user.email, body.user.password, client_address=client_address(request)
            )
            return StatusBody()

        @router.post(
            "/confirm",
            response_model=SignInAnswer,
            responses=error_responses(400, 401, 429, 503),
            summary="Confirm a registration with the mailed code and sign in",
        )
        async def confirm(body: ConfirmRegistrationBody, request: Request) -> SignInAnswer:
            result = await sign_in_flow.confirm_registration(
                body.user.email, body.user.code, client_address=client_address(request)
            )
            return sign_in_answer(result)

    return router
