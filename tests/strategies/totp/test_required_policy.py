"""KEYSTILE_MFA_POLICY=required: a user without a second factor enrols before any session exists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from keystile import testing
from keystile.clock import ManualClock
from keystile.runtime import Runtime
from keystile.settings import Settings
from keystile.strategies.totp.uri import parse_key_uri
from tests.strategies.totp.helpers import oathtool

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
def required(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    settings = make_settings(mfa_policy="required")
    runtime = Runtime(settings)
    try:
        anyio.run(runtime.password.create_user, EMAIL, PASSWORD)
    finally:
        runtime.close()
    return make_client(settings)


def first_factor(client: TestClient) -> Any:
    return client.post(
        "/auth/user/password/sign_in", json={"user": {"email": EMAIL, "password": PASSWORD}}
    ).json()


def test_the_first_factor_holds_the_sign_in_for_enrolment(required: TestClient) -> None:
    """No session: an MFA token whose only method is totp_setup."""
    body = first_factor(required)
    assert body["mfa_required"] is True
    assert body["methods"] == ["totp_setup"]
    assert "token" not in body


def test_enrolling_with_the_mfa_token_finishes_the_sign_in(
    required: TestClient, clock: ManualClock
) -> None:
    """setup and confirm_setup take the MFA token; confirming answers a session with both
    factors and the first recovery codes; the MFA token is then used up."""
    mfa_token = first_factor(required)["mfa_token"]
    started = required.post("/auth/user/totp/setup", json={"user": {"mfa_token": mfa_token}})
    assert started.status_code == 200
    secret = parse_key_uri(started.json()["totp_url"]).secret
    confirm = {
        "user": {
            "mfa_token": mfa_token,
            "setup_token": started.json()["setup_token"],
            "code": oathtool(secret, clock.now()),
        }
    }
    done = required.post("/auth/user/totp/confirm_setup", json=confirm)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "enabled"
    assert body["authentication_strategies"] == ["password", "totp"]
    assert len(body["recovery_codes"]) == 10
    me = required.get("/auth/me", headers={"authorization": f"Bearer {body['token']}"}).json()
    assert me["amr"] == ["pwd", "otp", "mfa"]
    again = required.post("/auth/user/totp/setup", json={"user": {"mfa_token": mfa_token}})
    assert again.status_code == 401
    # The next sign-in asks for the new authenticator (and offers the recovery codes).
    assert first_factor(required)["methods"] == ["totp", "recovery_code"]


def test_a_wrong_enrolment_code_finishes_nothing(required: TestClient) -> None:
    """A wrong code: 401, no session; the MFA token's failure is counted."""
    mfa_token = first_factor(required)["mfa_token"]
    started = required.post("/auth/user/totp/setup", json={"user": {"mfa_token": mfa_token}})
    confirm = {
        "user": {"mfa_token": mfa_token, "setup_token": started.json()["setup_token"], "code": "0"}
    }
    answer = required.post("/auth/user/totp/confirm_setup", json=confirm)
    assert answer.status_code == 401
    assert answer.json()["error"] == "authentication_failed"


def test_an_mfa_token_for_a_second_factor_cannot_enrol(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """A user who has TOTP: their MFA token (methods totp) does not open a new setup."""
    settings = make_settings()
    runtime = Runtime(settings)

    async def prepare() -> None:
        await runtime.password.create_user(EMAIL, PASSWORD)
        await testing.enrol_totp(runtime, EMAIL)

    try:
        anyio.run(prepare)
    finally:
        runtime.close()
    client = make_client(settings)
    mfa_token = first_factor(client)["mfa_token"]
    answer = client.post("/auth/user/totp/setup", json={"user": {"mfa_token": mfa_token}})
    assert answer.status_code == 401
    assert client.post("/auth/user/totp/setup").status_code == 401  # no token at all
