"""Signing keys: generated on first use, sealed at rest, rotated with the old key published
until the last token it signed has expired; and the discovery document."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient

from keystile import testing
from keystile.clock import ManualClock
from keystile.oauth import grants
from keystile.oauth.signing import PUBLISH_WINDOW
from keystile.settings import Settings


def kids(client: TestClient) -> list[str]:
    answer = client.get("/.well-known/jwks.json")
    assert answer.status_code == 200
    return [key["kid"] for key in answer.json()["keys"]]


def test_a_rotated_key_stays_published_for_the_window_then_goes(
    make_client: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    clock: ManualClock,
) -> None:
    """One key after first use; after a rotation the new key first and the old one still
    published; once PUBLISH_WINDOW has passed only the new one. No private key material
    is in the stored row."""
    client = make_client(make_settings())
    runtime = client.app.state.keystile.runtime  # type: ignore[attr-defined]
    portal = client.portal
    assert portal is not None
    (first,) = kids(client)
    new, published = portal.call(runtime.oauth.signing.rotate)
    assert published == [new.kid, first]
    assert kids(client) == [new.kid, first]
    clock.advance(PUBLISH_WINDOW - timedelta(seconds=1))
    assert kids(client) == [new.kid, first]
    clock.advance(timedelta(seconds=2))
    assert kids(client) == [new.kid]
    stored = testing.rows(runtime, "SELECT sealed_key FROM keystile_oauth_signing_keys")
    assert all(not row["sealed_key"].startswith("-----") for row in stored)
    assert all("PRIVATE" not in row["sealed_key"] for row in stored)


def test_the_openid_configuration_names_the_endpoints_and_grants(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """The discovery document points at the token endpoint and the JWKS and lists the grants."""
    client = make_client(make_settings())
    document = client.get("/.well-known/openid-configuration").json()
    assert document["issuer"] == "keystile"
    assert document["token_endpoint"].endswith("/oauth/token")
    assert document["jwks_uri"].endswith("/.well-known/jwks.json")
    assert set(document["grant_types_supported"]) == set(grants.ALL)
    assert "ES256" in document["id_token_signing_alg_values_supported"]


def test_with_recovery_codes_off_the_recovery_grant_is_refused(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """recovery_codes_enabled=false: the mfa-recovery-code grant is unsupported_grant_type
    and the MFA API lists no recovery-code authenticator."""
    client = make_client(make_settings(recovery_codes_enabled=False))
    runtime = client.app.state.keystile.runtime  # type: ignore[attr-defined]
    portal = client.portal
    assert portal is not None
    portal.call(runtime.password.create_user, "dan@example.com", "correct horse battery")
    portal.call(testing.enrol_totp, runtime, "dan@example.com")
    created = portal.call(lambda: runtime.oauth.clients.create("app", grant_types=list(grants.ALL)))
    auth = {"client_id": created.client.client_id, "client_secret": created.secret}
    first = client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "dan@example.com",
            "password": "correct horse battery",
            **auth,
        },
    )
    token = first.json()["mfa_token"]
    listed = client.get("/mfa/authenticators", headers={"Authorization": f"Bearer {token}"})
    assert [entry["authenticator_type"] for entry in listed.json()] == ["otp"]
    refused = client.post(
        "/oauth/token",
        data={
            "grant_type": grants.MFA_RECOVERY_CODE,
            "mfa_token": token,
            "recovery_code": "AAAA-BBBB-CCCC-DDDD",
            **auth,
        },
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "unsupported_grant_type"
