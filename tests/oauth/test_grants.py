"""The token endpoint in process, on SQLite and PostgreSQL: single use under concurrency,
and RFC 6749 §5.2 error bodies for every refusal."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from keystile import testing
from keystile.runtime import Runtime
from keystile.settings import Settings

EMAIL = "bob@example.com"
PASSWORD = "correct horse battery"
MFA_RECOVERY = "http://auth0.com/oauth/grant-type/mfa-recovery-code"


class Setup:
    """An app with a user (TOTP and recovery codes) and a confidential client."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.runtime: Runtime = client.app.state.keystile.runtime  # type: ignore[attr-defined]
        portal = client.portal
        assert portal is not None
        user = portal.call(self.runtime.password.create_user, EMAIL, PASSWORD)
        portal.call(testing.enrol_totp, self.runtime, EMAIL)
        assert self.runtime.recovery_codes is not None
        self.codes = list(portal.call(self.runtime.recovery_codes.generate, user).codes)
        created = portal.call(
            lambda: self.runtime.oauth.clients.create("app", grant_types=["password", MFA_RECOVERY])
        )
        self.client_id = created.client.client_id
        assert created.secret is not None
        self.secret = created.secret

    def token(self, **form: str) -> httpx.Response:
        data = {"client_id": self.client_id, "client_secret": self.secret, **form}
        answer: httpx.Response = self.client.post("/oauth/token", data=data)
        return answer

    def mfa_token(self) -> str:
        answer = self.token(grant_type="password", username=EMAIL, password=PASSWORD)
        assert answer.status_code == 403, answer.text
        body: dict[str, Any] = answer.json()
        assert body["error"] == "mfa_required"
        assert body["error_description"] == "Multifactor authentication required"
        return str(body["mfa_token"])


@pytest.fixture
def setup(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> Setup:
    settings = make_settings(
        database_pool_size=20, recovery_code_rate="1000/5m", password_sign_in_rate="1000/5m"
    )
    return Setup(make_client(settings))


def test_fifty_parallel_recovery_grants_with_one_code_give_one_success(setup: Setup) -> None:
    """50 mfa-recovery-code grants with one code at once, each with its own MFA token:
    exactly one answers tokens; the others invalid_grant."""
    tokens = [setup.mfa_token() for _ in range(50)]
    code = setup.codes[0]

    def attempt(mfa_token: str) -> httpx.Response:
        return setup.token(grant_type=MFA_RECOVERY, mfa_token=mfa_token, recovery_code=code)

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(attempt, tokens))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [400] * 49, statuses
    assert {a.json()["error"] for a in answers if a.status_code == 400} == {"invalid_grant"}


def assert_rfc6749(answer: httpx.Response, status: int, error: str) -> None:
    """An RFC 6749 §5.2 error: the status, a JSON object with ``error`` (and a string
    ``error_description``), and ``Cache-Control: no-store``."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str)
    assert set(body) <= {"error", "error_description", "error_uri"}


def test_every_refusal_is_an_rfc6749_error_body(setup: Setup) -> None:
    """Wrong password, unknown grant, missing field, bad client, disallowed grant,
    unknown refresh token and a repeated parameter: each its §5.2 error."""
    wrong = setup.token(grant_type="password", username=EMAIL, password="wrong password!!")
    assert_rfc6749(wrong, 400, "invalid_grant")
    assert wrong.json()["error_description"] == "Wrong email or password."
    unknown = setup.token(grant_type="password", username="nobody@example.com", password="x" * 12)
    assert unknown.json() == wrong.json()
    assert_rfc6749(setup.token(grant_type="implicit"), 400, "unsupported_grant_type")
    assert_rfc6749(setup.token(grant_type="password", username=EMAIL), 400, "invalid_request")
    bad_secret = setup.client.post(
        "/oauth/token",
        data={"grant_type": "password", "client_id": setup.client_id, "client_secret": "nope"},
    )
    assert_rfc6749(bad_secret, 401, "invalid_client")
    basic = setup.client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": EMAIL, "password": "wrong password!!"},
        auth=(setup.client_id, setup.secret),
    )
    assert_rfc6749(basic, 400, "invalid_grant")
    assert_rfc6749(
        setup.token(grant_type="refresh_token", refresh_token="x"), 400, "unauthorized_client"
    )
    assert_rfc6749(
        setup.client.post(
            "/oauth/token",
            content="grant_type=password&grant_type=password",
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        400,
        "invalid_request",
    )
    too_large = setup.client.post(
        "/oauth/token",
        content=b"grant_type=password&username=" + b"a" * 20_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert too_large.status_code == 413
    assert too_large.json()["error"] == "request_too_large"
    used = setup.token(grant_type=MFA_RECOVERY, mfa_token="not-a-token", recovery_code="x" * 16)
    assert_rfc6749(used, 400, "invalid_grant")


def test_a_recovery_code_grant_under_the_limit_answers_429_with_retry_after(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """Past the per-user recovery-code limit: 429 too_many_attempts with Retry-After."""
    setup = Setup(make_client(make_settings(recovery_code_rate="2/5m")))
    token = setup.mfa_token()
    answers = [
        setup.token(grant_type=MFA_RECOVERY, mfa_token=token, recovery_code="AAAA-BBBB-CCCC-DDDD")
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [400, 400, 429]
    assert answers[2].json()["error"] == "too_many_attempts"
    assert int(answers[2].headers["retry-after"]) > 0
    assert answers[2].headers["cache-control"] == "no-store"
