"""Auth0's MFA API: authenticators, challenge, associate and delete, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient

from keystile.clock import ManualClock
from keystile.oauth.grants import MFA_OTP
from keystile.settings import Settings
from tests.oauth.test_grants import EMAIL, MFA_RECOVERY, PASSWORD, Setup
from tests.strategies.totp.helpers import needs_oathtool, oathtool


@pytest.fixture
def setup(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> Setup:
    return Setup(make_client(make_settings()))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_authenticators_and_challenge_of_an_mfa_token(setup: Setup) -> None:
    """The MFA token lists an otp and a recovery-code authenticator and accepts an otp
    challenge; an unknown token is 401 invalid_token."""
    token = setup.mfa_token()
    listed = setup.client.get("/mfa/authenticators", headers=bearer(token))
    assert listed.status_code == 200
    assert listed.headers["cache-control"] == "no-store"
    kinds = [(entry["authenticator_type"], entry["active"]) for entry in listed.json()]
    assert kinds == [("otp", True), ("recovery-code", True)]
    challenge = setup.client.post(
        "/mfa/challenge", json={"mfa_token": token, "challenge_type": "otp"}
    )
    assert challenge.json() == {"challenge_type": "otp"}
    unknown = setup.client.get("/mfa/authenticators", headers=bearer("nope"))
    assert unknown.status_code == 401
    assert unknown.json()["error"] == "invalid_token"


def test_associate_is_refused_to_a_user_who_is_enrolled(setup: Setup) -> None:
    """An MFA token of a user with TOTP cannot associate another: 403 access_denied."""
    answer = setup.client.post(
        "/mfa/associate", headers=bearer(setup.mfa_token()), json={"authenticator_types": ["otp"]}
    )
    assert answer.status_code == 403
    assert answer.json()["error"] == "access_denied"


@needs_oathtool
def test_associate_under_the_required_policy_starts_a_confirmable_setup(
    make_client: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    clock: ManualClock,
) -> None:
    """A user without a second factor under the required policy: the password grant answers
    mfa_required; associate answers the secret and its otpauth URI, and the setup it started
    (kept for the mfa-otp grant) confirms with a code an authenticator made from that secret."""
    client = make_client(make_settings(mfa_policy="required"))
    runtime = client.app.state.keystile.runtime  # type: ignore[attr-defined]
    portal = client.portal
    assert portal is not None
    user = portal.call(runtime.password.create_user, EMAIL, PASSWORD)
    created = portal.call(lambda: runtime.oauth.clients.create("app", grant_types=["password"]))
    first = client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": EMAIL,
            "password": PASSWORD,
            "client_id": created.client.client_id,
            "client_secret": created.secret,
        },
    )
    assert first.status_code == 403
    token = first.json()["mfa_token"]
    associated = client.post(
        "/mfa/associate", headers=bearer(token), json={"authenticator_types": ["otp"]}
    )
    assert associated.status_code == 200, associated.text
    body = associated.json()
    assert body["authenticator_type"] == "otp"
    uri = urlparse(body["barcode_uri"])
    assert uri.scheme == "otpauth"
    assert parse_qs(uri.query)["secret"] == [body["secret"]]
    setup_token = portal.call(runtime.mfa_api.setup_token_for, token)
    assert setup_token is not None
    enabled = portal.call(
        runtime.enrolment.confirm_setup, user, setup_token, oathtool(body["secret"], clock.now())
    )
    assert enabled.first_enrolment


def test_delete_needs_a_recent_second_factor(setup: Setup, clock: ManualClock) -> None:
    """DELETE /mfa/authenticators/{id} with an access token of a recovery-code sign-in
    removes TOTP (204; the next password grant needs no second factor); the same call
    ten minutes after the sign-in is 403 insufficient_user_authentication."""
    token = setup.mfa_token()
    authenticator = setup.client.get("/mfa/authenticators", headers=bearer(token)).json()[0]["id"]
    granted = setup.token(grant_type=MFA_RECOVERY, mfa_token=token, recovery_code=setup.codes[0])
    access = granted.json()["access_token"]
    clock.advance(timedelta(minutes=10))
    stale = setup.client.delete(f"/mfa/authenticators/{authenticator}", headers=bearer(access))
    assert stale.status_code == 403
    assert stale.json()["error"] == "insufficient_user_authentication"
    assert 'max_age="300"' in stale.headers["www-authenticate"]
    token = setup.mfa_token()
    granted = setup.token(grant_type=MFA_RECOVERY, mfa_token=token, recovery_code=setup.codes[1])
    access = granted.json()["access_token"]
    missing = setup.client.delete("/mfa/authenticators/totp|nope", headers=bearer(access))
    assert missing.status_code == 404
    removed = setup.client.delete(f"/mfa/authenticators/{authenticator}", headers=bearer(access))
    assert removed.status_code == 204
    after = setup.token(grant_type="password", username=EMAIL, password=PASSWORD)
    assert after.status_code == 200, after.text


def test_delete_refuses_what_is_not_a_live_access_token(setup: Setup) -> None:
    """An MFA token, or a forged token, cannot remove an authenticator: 401 invalid_token."""
    token = setup.mfa_token()
    for candidate in (token, "a.b.c"):
        answer = setup.client.delete("/mfa/authenticators/totp|x", headers=bearer(candidate))
        assert answer.status_code == 401
        assert answer.json()["error"] == "invalid_token"


@needs_oathtool
def test_the_mfa_otp_grant_finishes_an_association(
    make_client: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    clock: ManualClock,
) -> None:
    """As Auth0's clients do: password grant → 403 mfa_required → associate → the mfa-otp
    grant with a code from the new authenticator answers tokens (the sign-in is finished,
    with both factors) and the next sign-in asks for that authenticator."""
    client = make_client(make_settings(mfa_policy="required"))
    runtime = client.app.state.keystile.runtime  # type: ignore[attr-defined]
    portal = client.portal
    assert portal is not None
    portal.call(runtime.password.create_user, EMAIL, PASSWORD)
    created = portal.call(
        lambda: runtime.oauth.clients.create("app", grant_types=["password", MFA_OTP])
    )
    credentials = {"client_id": created.client.client_id, "client_secret": created.secret}
    password_grant = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    first = client.post("/oauth/token", data={**password_grant, **credentials})
    assert first.status_code == 403
    token = first.json()["mfa_token"]
    associated = client.post(
        "/mfa/associate", headers=bearer(token), json={"authenticator_types": ["otp"]}
    ).json()
    # As Auth0 does, the first enrolment's recovery codes come with the association.
    assert len(set(associated["recovery_codes"])) == 10
    granted = client.post(
        "/oauth/token",
        data={
            "grant_type": MFA_OTP,
            "mfa_token": token,
            "otp": oathtool(associated["secret"], clock.now()),
            **credentials,
        },
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["access_token"]
    again = client.post("/oauth/token", data={**password_grant, **credentials})
    assert again.status_code == 403
    methods = client.get("/mfa/authenticators", headers=bearer(again.json()["mfa_token"]))
    assert [a["authenticator_type"] for a in methods.json()][:1] == ["otp"]
    # And one of those codes finishes a later sign-in.
    created_rc = portal.call(
        lambda: runtime.oauth.clients.create("rc", grant_types=["password", MFA_RECOVERY])
    )
    rc_credentials = {
        "client_id": created_rc.client.client_id,
        "client_secret": created_rc.secret,
    }
    held = client.post("/oauth/token", data={**password_grant, **rc_credentials}).json()
    recovered = client.post(
        "/oauth/token",
        data={
            "grant_type": MFA_RECOVERY,
            "mfa_token": held["mfa_token"],
            "recovery_code": associated["recovery_codes"][0],
            **rc_credentials,
        },
    )
    assert recovered.status_code == 200, recovered.text


def test_a_keystile_session_token_is_not_an_access_token_for_the_mfa_api(setup: Setup) -> None:
    """DELETE /mfa/authenticators with a token of another kind (a Keystile session token, whose
    kid is no signing key of the JWKS): 401 invalid_token, never a 500 (Schemathesis found it)."""
    session = setup.client.post(
        "/auth/user/recovery_code/verify",
        json={"user": {"mfa_token": setup.mfa_token(), "code": setup.codes[2]}},
    ).json()["token"]
    answer = setup.client.delete("/mfa/authenticators/0", headers=bearer(session))
    assert answer.status_code == 401
