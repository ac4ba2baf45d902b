"""HTTP face of the password strategy: ``POST {prefix}/user/password/{sign_in,register}``."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from keystile.strategies.password.service import PasswordService
from keystile.web.guards import client_address
from keystile.web.responses import NoStoreRoute, error_responses
from keystile.web.schemas import AuthenticatedBody, PasswordBody


def password_router(service: PasswordService) -> APIRouter:
    """Routes for ``service``; ``register`` exists only when registration is enabled."""
    router = APIRouter(prefix="/user/password", route_class=NoStoreRoute, tags=["password"])

    @router.post(
        "/sign_in",
        response_model=AuthenticatedBody,
        responses=error_responses(400, 401, 429, 503),
        summary="Sign in with email and password",
    )
    async def sign_in(body: PasswordBody, request: Request) -> AuthenticatedBody:
        result = await service.sign_in(
            body.user.email, body.user.password, client_address=client_address(request)
        )
        return AuthenticatedBody.of(result)

    if service.config.registration_enabled:

        @router.post(
            "/register",
            response_model=AuthenticatedBody,
            status_code=status.HTTP_201_CREATED,
            responses=error_responses(400, 409, 429, 503),
            summary="Create an account with a password and sign in",
        )
        async def register(body: PasswordBody, request: Request) -> JSONResponse:
            result = await service.register(
                body.user.email, body.user.password, client_address=client_address(request)
            )
            return JSONResponse(
                AuthenticatedBody.of(result).model_dump(mode="json"),
                status_code=status.HTTP_201_CREATED,
            )

    return router
