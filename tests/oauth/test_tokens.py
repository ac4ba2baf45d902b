"""The tokens the grants answer, in process: claims, algorithms, client authentication,
the passwordless grant, refresh scope, and acr_values/max_age."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from keystile.clock import ManualClock
from keystile.oauth import grants
from keystile.settings import Settings

EMAIL = "carol@example.com"
PASSWORD = "correct horse battery"


class App:
    """An app with a user who has no second factor, and clients made on demand."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.runtime = client.app.state.keystile.runtime  # type: ignore[attr-defined]
        portal = client.portal
        assert portal is not None
        self.portal = portal
        portal.call(self.runtime.password.create_user, EMAIL, PASSWORD)

    def new_client(self, *names: str, public: bool = False) -> tuple[str, str | None]:
        chosen = [grants.parse_grant(name) for name in names] or list(grants.ALL)
        created = self.portal.call(
            lambda: self.runtime.oauth.clients.create("app", grant_types=chosen, public=public)
        )
        return created.client.client_id, created.secret

    def key_set(self) -> jwt.PyJWKSet:
        return jwt.PyJWKSet.from_dict(self.client.get("/.well-known/jwks.json").json())

    def decode(self, token: str, audience: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        key = self.key_set()[header["kid"]]
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[header["alg"]],
            audience=audience,
            issuer="keystile",
            options={"verify_exp": False, "verify_iat": False},
        )
        return claims


@pytest.fixture
def make_app(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> Callable[..., App]:
    def build(**overrides: Any) -> App:
        return App(make_client(make_settings(**overrides)))

    return build


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "RS256"])
def test_tokens_are_signed_with_the_configured_algorithm_and_published(
    make_app: Callable[..., App], algorithm: str
) -> None:
    """Access and ID tokens carry kid and alg of a published key and the documented claims;
    the ID token has email only with scope email."""
    app = make_app(oauth_signing_algorithm=algorithm)
    client_id, secret = app.new_client("password")
    answer = app.client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": EMAIL,
            "password": PASSWORD,
            "scope": "openid email",
            "client_id": client_id,
            "client_secret": secret,
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "openid email"
    assert "refresh_token" not in body
    assert jwt.get_unverified_header(body["access_token"])["alg"] == algorithm
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"
    access = app.decode(body["access_token"], "keystile")
    assert set(access) >= {"iss", "sub", "aud", "exp", "iat", "auth_time", "amr", "acr", "jti"}
    assert access["amr"] == ["pwd"]
    assert access["acr"] == grants.ACR_SINGLE_FACTOR
    assert access["exp"] - access["iat"] == body["expires_in"]
    identity = app.decode(body["id_token"], client_id)
    assert identity["email"] == EMAIL
    no_email = app.client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": EMAIL,
            "password": PASSWORD,
            "scope": "openid",
            "client_id": client_id,
            "client_secret": secret,
        },
    ).json()
    assert "email" not in app.decode(no_email["id_token"], client_id)


def test_revoking_the_session_row_revokes_the_access_token(make_app: Callable[..., App]) -> None:
    """The access token's jti is its sign-in's session row: live, the MFA API takes the
    token (and refuses the missing second factor, 403); once that row is revoked (what
    sign-out does), the token is 401 invalid_token."""
    app = make_app()
    client_id, secret = app.new_client("password")
    body = app.client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": EMAIL,
            "password": PASSWORD,
            "client_id": client_id,
            "client_secret": secret,
        },
    ).json()
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    live = app.client.delete("/mfa/authenticators/totp|x", headers=bearer)
    assert live.status_code == 403
    jti = app.decode(body["access_token"], "keystile")["jti"]
    assert app.portal.call(lambda: app.runtime._tokens.revoke(jti, now=app.runtime.clock.now()))
    revoked = app.client.delete("/mfa/authenticators/totp|x", headers=bearer)
    assert revoked.status_code == 401
    assert revoked.json()["error"] == "invalid_token"


def test_client_authentication_methods(make_app: Callable[..., App]) -> None:
    """client_secret_basic and client_secret_post work; a public client needs no secret
    but is refused a secret it does not have, and a grant it was not given."""
    app = make_app()
    client_id, secret = app.new_client("password")
    assert secret is not None
    form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    basic = app.client.post("/oauth/token", data=form, auth=(client_id, secret))
    assert basic.status_code == 200, basic.text
    both = app.client.post(
        "/oauth/token", data={**form, "client_secret": secret}, auth=(client_id, secret)
    )
    assert both.json()["error"] == "invalid_request"
    public_id, none = app.new_client("password", public=True)
    assert none is None
    public = app.client.post("/oauth/token", data={**form, "client_id": public_id})
    assert public.status_code == 200, public.text
    claimed = app.client.post(
        "/oauth/token", data={**form, "client_id": public_id, "client_secret": "made-up"}
    )
    assert claimed.status_code == 401
    assert claimed.json()["error"] == "invalid_client"
    refresh = app.client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": public_id},
    )
    assert refresh.json()["error"] == "unauthorized_client"
    json_body = app.client.post("/oauth/token", json={**form, "client_id": public_id})
    assert json_body.status_code == 200, json_body.text


def test_password_realm_and_passwordless_otp(make_app: Callable[..., App]) -> None:
    """password-realm signs in like password; passwordless/start mails a code that the
    passwordless/otp grant accepts once (otp amr)."""
    app = make_app()
    client_id, secret = app.new_client()
    auth = {"client_id": client_id, "client_secret": secret}
    realm = app.client.post(
        "/oauth/token",
        data={
            "grant_type": grants.PASSWORD_REALM,
            "username": EMAIL,
            "password": PASSWORD,
            "realm": "Username-Password-Authentication",
            **auth,
        },
    )
    assert realm.status_code == 200, realm.text
    started = app.client.post(
        "/passwordless/start",
        json={"connection": "email", "email": EMAIL, "send": "code", **auth},
    )
    assert started.status_code == 200, started.text
    deadline = time.monotonic() + 10
    while not app.runtime.mailbox.entries():
        assert time.monotonic() < deadline, "no code was sent"
        time.sleep(0.02)
    text = app.runtime.mailbox.entries()[-1].message.text
    code = next(word for word in text.split() if len(word) == 6 and word.isupper())
    form = {
        "grant_type": grants.PASSWORDLESS_OTP,
        "username": EMAIL,
        "otp": code,
        "realm": "email",
        **auth,
    }
    signed_in = app.client.post("/oauth/token", data=form)
    assert signed_in.status_code == 200, signed_in.text
    assert app.decode(signed_in.json()["access_token"], "keystile")["amr"] == ["otp"]
    again = app.client.post("/oauth/token", data=form)
    assert again.json() == {
        "error": "invalid_grant",
        "error_description": "Wrong email or verification code.",
    }


def test_refresh_narrows_scope_and_belongs_to_its_client(make_app: Callable[..., App]) -> None:
    """A refresh may ask for less scope, never more; another client's refresh token is
    invalid_grant and stays usable by its owner."""
    app = make_app()
    client_id, secret = app.new_client("password", "refresh_token")
    other_id, other_secret = app.new_client("refresh_token")
    first = app.client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": EMAIL,
            "password": PASSWORD,
            "scope": "openid offline_access",
            "client_id": client_id,
            "client_secret": secret,
        },
    ).json()
    stolen = app.client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": other_id,
            "client_secret": other_secret,
        },
    )
    assert stolen.json()["error"] == "invalid_grant"
    wider = app.client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "scope": "openid email",
            "client_id": client_id,
            "client_secret": secret,
        },
    )
    assert wider.json()["error"] == "invalid_scope"
    narrower = app.client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "scope": "offline_access",
            "client_id": client_id,
            "client_secret": secret,
        },
    )
    assert narrower.status_code == 200, narrower.text
    assert narrower.json()["scope"] == "offline_access"
    assert "id_token" not in narrower.json()


def test_acr_values_and_max_age_are_honoured(
    make_app: Callable[..., App], clock: ManualClock
) -> None:
    """acr_values asking for a second factor the user lacks, or a refresh older than
    max_age, is unmet_authentication_requirements; a fresh sign-in meets max_age."""
    app = make_app()
    client_id, secret = app.new_client("password", "refresh_token")
    auth = {"client_id": client_id, "client_secret": secret}
    form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD, **auth}
    weak = app.client.post("/oauth/token", data={**form, "acr_values": grants.ACR_MFA})
    assert weak.status_code == 400
    assert weak.json()["error"] == "unmet_authentication_requirements"
    fresh = app.client.post(
        "/oauth/token", data={**form, "max_age": "60", "scope": "openid offline_access"}
    )
    assert fresh.status_code == 200, fresh.text
    clock.advance(timedelta(minutes=5))
    old = app.client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": fresh.json()["refresh_token"],
            "max_age": "60",
            **auth,
        },
    )
    assert old.json()["error"] == "unmet_authentication_requirements"
