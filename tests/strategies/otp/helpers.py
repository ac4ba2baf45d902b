"""Small helpers shared by the OTP tests."""

from __future__ import annotations

import anyio
from fastapi.testclient import TestClient
from httpx import Response

from keystile.runtime import Runtime
from keystile.settings import Settings


def add_user(settings: Settings, email: str) -> None:
    """Create a user without a password (OTP-only account)."""
    runtime = Runtime(settings)
    try:

        async def create() -> None:
            await runtime.create_user(email)

        anyio.run(create)
    finally:
        runtime.close()


def request_code(client: TestClient, email: str) -> Response:
    response: Response = client.post("/auth/user/otp/request", json={"user": {"email": email}})
    return response


def sign_in(client: TestClient, email: str, code: str) -> Response:
    response: Response = client.post(
        "/auth/user/otp/sign_in", json={"user": {"email": email, "otp": code}}
    )
    return response
