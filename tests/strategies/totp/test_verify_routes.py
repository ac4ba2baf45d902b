"""The two-step sign-in over HTTP: API.md's "second factor needed", then /user/totp/verify."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from keystile import testing
from keystile.clock import ManualClock
from keystile.runtime import Runtime
from keystile.settings import Settings
from tests.strategies.totp.helpers import oathtool

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


def enrolled_user(settings: Settings) -> bytes:
    """A user with a password and an active authenticator; its TOTP secret."""
    runtime = Runtime(settings)

    async def create() -> bytes:
        await runtime.password.create_user(EMAIL, PASSWORD)
        return await testing.enrol_totp(runtime, EMAIL)

    try:
        return anyio.run(create)
    finally:
        runtime.close()


def password_step(client: TestClient) -> Any:
    return client.post(
        "/auth/user/password/sign_in", json={"user": {"email": EMAIL, "password": PASSWORD}}
    )


def verify(client: TestClient, code: str, *, mfa_token: str | None = None, **kw: Any) -> Any:
    user = {"code": code} if mfa_token is None else {"mfa_token": mfa_token, "code": code}
    return client.post("/auth/user/totp/verify", json={"user": user}, **kw)


@pytest.fixture
def secret(settings: Settings) -> bytes:
    return enrolled_user(settings)


def test_first_factor_answers_second_factor_needed(client: TestClient, secret: bytes) -> None:
    """API.md's shape: mfa_required, an opaque mfa_token, expires_in 300, methods ["totp"]."""
    answer = password_step(client)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"mfa_required", "mfa_token", "expires_in", "methods"}
    assert body["mfa_required"] is True
    assert body["expires_in"] == 300
    assert body["methods"] == ["totp"]
    assert answer.headers["cache-control"] == "no-store"


def test_the_mfa_token_is_no_session(client: TestClient, secret: bytes) -> None:
    """Every authenticated route refuses an mfa_token as a bearer token (401)."""
    token = password_step(client).json()["mfa_token"]
    headers = {"authorization": f"Bearer {token}"}
    assert client.get("/auth/me", headers=headers).status_code == 401
    assert client.post("/auth/sign_out", headers=headers).status_code == 401
    step_up = verify(client, "123456", headers=headers)
    assert step_up.status_code == 401
    assert step_up.json()["error"] == "unauthenticated"


def test_verify_finishes_the_sign_in_with_both_factors(
    client: TestClient, secret: bytes, clock: ManualClock
) -> None:
    """mfa_token + oathtool code: the authenticated body; /auth/me shows both factors."""
    token = password_step(client).json()["mfa_token"]
    answer = verify(client, oathtool(secret, clock.now()), mfa_token=token)
    assert answer.status_code == 200
    body = answer.json()
    assert body["authentication_strategies"] == ["password", "totp"]
    me = client.get("/auth/me", headers={"authorization": f"Bearer {body['token']}"}).json()
    assert me["amr"] == ["pwd", "otp", "mfa"]
    assert me["authentication_strategies"] == ["password", "totp"]


def test_wrong_replayed_and_unknown_answer_alike(
    client: TestClient, secret: bytes, clock: ManualClock
) -> None:
    """A wrong code, a replayed one, a malformed one and an unknown token: one 401 body."""
    code = oathtool(secret, clock.now())
    assert verify(client, code, mfa_token=password_step(client).json()["mfa_token"]).is_success
    token = password_step(client).json()["mfa_token"]
    answers = [
        verify(client, code, mfa_token=token),  # replayed
        verify(client, "000000", mfa_token=token),  # wrong (most likely)
        verify(client, "12ab56", mfa_token=token),  # malformed: simply wrong
        verify(client, code, mfa_token="not-a-token"),
    ]
    assert [a.status_code for a in answers] == [401] * 4
    assert {a.text for a in answers} == {answers[0].text}
    assert answers[0].json()["error"] == "authentication_failed"


def test_step_up_with_a_bearer_token(client: TestClient, secret: bytes, clock: ManualClock) -> None:
    """Bearer + code: a fresh token (auth_time now); the old token is revoked."""
    token = password_step(client).json()["mfa_token"]
    first = verify(client, oathtool(secret, clock.now()), mfa_token=token).json()["token"]
    clock.advance(timedelta(minutes=7))
    stepped = verify(
        client, oathtool(secret, clock.now()), headers={"authorization": f"Bearer {first}"}
    )
    assert stepped.status_code == 200
    new = stepped.json()["token"]
    assert client.get("/auth/me", headers={"authorization": f"Bearer {first}"}).status_code == 401
    me = client.get("/auth/me", headers={"authorization": f"Bearer {new}"}).json()
    assert me["auth_time"].startswith(clock.now().strftime("%Y-%m-%dT%H:%M"))


def test_malformed_verify_bodies_are_400(client: TestClient) -> None:
    """No code, a non-string code, an over-long token: 400 invalid_request naming the field."""
    for body in (
        {"user": {"mfa_token": "x"}},
        {"user": {"mfa_token": "x", "code": 123456}},
        {"user": {"mfa_token": "x" * 129, "code": "123456"}},
        {"user": {"code": "123456", "extra": 1}},
    ):
        answer = client.post("/auth/user/totp/verify", json=body)
        assert answer.status_code == 400, body
        assert answer.json()["error"] == "invalid_request"


def test_an_mfa_token_burns_after_five_failures_over_http(
    make_client: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    clock: ManualClock,
) -> None:
    """Five wrong codes on one token: then the right code on it is 401 too."""
    settings = make_settings(totp_rate="100/5m")
    secret = enrolled_user(settings)
    client = make_client(settings)
    token = password_step(client).json()["mfa_token"]
    for _ in range(5):
        assert verify(client, "000000", mfa_token=token).status_code == 401
    assert verify(client, oathtool(secret, clock.now()), mfa_token=token).status_code == 401
