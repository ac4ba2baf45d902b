"""Small helpers shared by the OTP tests."""

from __future__ import annotations

import anyio
from fastapi.testclient import TestClient
from httpx import Response

from keystile.errors import AuthenticationFailedError, TooManyAttemptsError
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


async def parallel_wrong_guesses(runtime: Runtime, email: str, count: int) -> dict[str, int]:
    """``count`` wrong codes for ``email`` at once; how many were judged and how many blocked.

    The runtime is closed afterwards.
    """
    outcomes: list[str] = []

    async def guess() -> None:
        try:
            await runtime.sign_in.otp(email, "AAAAAA")
        except AuthenticationFailedError:
            outcomes.append("judged")
        except TooManyAttemptsError:
            outcomes.append("blocked")

    try:
        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(guess)
    finally:
        await runtime.aclose()
    return {"judged": outcomes.count("judged"), "blocked": outcomes.count("blocked")}
