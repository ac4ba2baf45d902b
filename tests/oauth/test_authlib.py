"""Authlib's OAuth2Client, an independent client, against a real ``keystile serve``.

The password grant answers ``mfa_required``; the ``mfa-otp`` grant finishes it
with a code from ``oathtool``; the ``mfa-recovery-code`` grant with a recovery
code answers a new code that works next time while the used one never does
again; a refresh keeps the sign-in's ``amr`` and ``auth_time``. A resource
server verifies the tokens with PyJWT's ``PyJWKClient`` through the JWKS URL
only, before and after a signing-key rotation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client, OAuthError

from keystile.oauth.resource import ACR_MFA, AccessTokenVerifier, InsufficientAuthenticationError
from tests.oauth.service import EMAIL, PASSWORD, Deployment, deployment
from tests.strategies.totp.helpers import needs_oathtool

MFA_OTP = "http://auth0.com/oauth/grant-type/mfa-otp"
MFA_RECOVERY = "http://auth0.com/oauth/grant-type/mfa-recovery-code"

pytestmark = needs_oathtool


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deployment(tmp_path_factory.mktemp("oauth"))


def client(service: Deployment) -> OAuth2Client:
    return OAuth2Client(
        service.client_id,
        service.client_secret,
        token_endpoint_auth_method="client_secret_post",
        scope="openid email offline_access",
    )


def mfa_token(service: Deployment, oauth: OAuth2Client) -> str:
    with pytest.raises(OAuthError) as raised:
        oauth.fetch_token(
            service.token_url, grant_type="password", username=EMAIL, password=PASSWORD
        )
    assert raised.value.error == "mfa_required"
    assert raised.value.description == "Multifactor authentication required"
    response = oauth.request(
        "POST",
        service.token_url,
        withhold_token=True,
        data={
            "grant_type": "password",
            "username": EMAIL,
            "password": PASSWORD,
            "client_id": service.client_id,
            "client_secret": service.client_secret,
        },
    )
    assert response.status_code == 403
    assert response.headers["cache-control"] == "no-store"
    return str(response.json()["mfa_token"])


def verify(service: Deployment, token: str, audience: str) -> dict[str, Any]:
    keys = jwt.PyJWKClient(f"{service.base}/.well-known/jwks.json", cache_keys=False)
    key = keys.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["ES256"], audience=audience, issuer="keystile"
    )
    return claims


def test_password_then_mfa_otp_then_refresh(service: Deployment) -> None:
    """mfa_required → mfa-otp with an oathtool code → tokens a resource server verifies
    through the JWKS; refresh keeps amr and auth_time and rotates the refresh token."""
    oauth = client(service)
    token = oauth.fetch_token(
        service.token_url,
        grant_type=MFA_OTP,
        mfa_token=mfa_token(service, oauth),
        otp=service.next_code(),
    )
    access = verify(service, token["access_token"], "keystile")
    assert access["amr"] == ["pwd", "otp", "mfa"]
    assert access["acr"] == "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
    identity = verify(service, token["id_token"], service.client_id)
    assert identity["email"] == EMAIL
    assert identity["sub"] == access["sub"]
    refreshed = oauth.refresh_token(service.token_url, refresh_token=token["refresh_token"])
    again = verify(service, refreshed["access_token"], "keystile")
    assert again["amr"] == access["amr"]
    assert again["auth_time"] == access["auth_time"]
    assert again["jti"] != access["jti"]
    assert refreshed["refresh_token"] != token["refresh_token"]


def test_recovery_code_grant_answers_a_new_code(service: Deployment) -> None:
    """mfa-recovery-code answers tokens and a new recovery_code; the new code works next
    time, the used one never again (invalid_grant)."""
    oauth = client(service)
    used = service.recovery_codes.pop()
    first = oauth.fetch_token(
        service.token_url,
        grant_type=MFA_RECOVERY,
        mfa_token=mfa_token(service, oauth),
        recovery_code=used,
    )
    fresh = first["recovery_code"]
    assert fresh
    assert fresh != used
    assert verify(service, first["access_token"], "keystile")["amr"][-1] == "mfa"
    with pytest.raises(OAuthError) as raised:
        oauth.fetch_token(
            service.token_url,
            grant_type=MFA_RECOVERY,
            mfa_token=mfa_token(service, oauth),
            recovery_code=used,
        )
    assert raised.value.error == "invalid_grant"
    second = oauth.fetch_token(
        service.token_url,
        grant_type=MFA_RECOVERY,
        mfa_token=mfa_token(service, oauth),
        recovery_code=fresh,
    )
    assert second["recovery_code"] not in (fresh, used)


def test_tokens_verify_before_and_after_a_signing_key_rotation(service: Deployment) -> None:
    """After `keystile keys rotate --signing`, new tokens carry the new kid and the
    old tokens still verify through the JWKS URL alone."""
    oauth = client(service)
    before = oauth.fetch_token(
        service.token_url,
        grant_type=MFA_RECOVERY,
        mfa_token=mfa_token(service, oauth),
        recovery_code=service.recovery_codes.pop(),
    )
    service.cli("keys", "rotate", "--signing")
    after = oauth.refresh_token(service.token_url, refresh_token=before["refresh_token"])
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    new_kid = jwt.get_unverified_header(after["access_token"])["kid"]
    assert old_kid != new_kid
    for token in (before["access_token"], after["access_token"]):
        assert verify(service, token, "keystile")["sub"]
    assert verify(service, after["id_token"], service.client_id)["sub"]


def test_refresh_token_reuse_revokes_the_family(service: Deployment) -> None:
    """A refresh token used twice: the second use fails and revokes its successor too."""
    oauth = client(service)
    used = service.recovery_codes.pop()
    token = oauth.fetch_token(
        service.token_url,
        grant_type=MFA_RECOVERY,
        mfa_token=mfa_token(service, oauth),
        recovery_code=used,
    )
    successor = oauth.refresh_token(service.token_url, refresh_token=token["refresh_token"])
    with pytest.raises(OAuthError) as reused:
        oauth.refresh_token(service.token_url, refresh_token=token["refresh_token"])
    assert reused.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as revoked:
        oauth.refresh_token(service.token_url, refresh_token=successor["refresh_token"])
    assert revoked.value.error == "invalid_grant"


def test_the_resource_helper_verifies_and_asks_for_step_up(service: Deployment) -> None:
    """AccessTokenVerifier (JWKS URL only): a single-factor token passes a plain check and
    is refused with RFC 9470's challenge when acr_values asks for MFA; an MFA token older
    than max_age is refused with max_age in the challenge; another audience is invalid."""
    verifier = AccessTokenVerifier(
        f"{service.base}/.well-known/jwks.json", issuer="keystile", audience="keystile"
    )
    oauth = client(service)
    token = oauth.fetch_token(
        service.token_url,
        grant_type=MFA_RECOVERY,
        mfa_token=mfa_token(service, oauth),
        recovery_code=service.recovery_codes.pop(),
    )["access_token"]
    claims = verifier.verify(token, acr_values=[ACR_MFA], max_age=300)
    assert claims["acr"] == ACR_MFA
    with pytest.raises(InsufficientAuthenticationError) as too_old:
        verifier.verify(token, max_age=60, now=time.time() + 120)
    assert too_old.value.challenge == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A different authentication level is required", max_age="60"'
    )
    other = AccessTokenVerifier(
        f"{service.base}/.well-known/jwks.json", issuer="keystile", audience="another-api"
    )
    with pytest.raises(jwt.InvalidAudienceError):
        other.verify(token)
