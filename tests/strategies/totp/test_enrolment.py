"""TOTP enrolment over HTTP: setup, confirmation by an independent authenticator, disable.

The app is Keystile's own (``create_app``) with the enrolment router mounted
beside it by a test-only factory, until the runtime wires it. Codes come from
``oathtool`` and the QR code is read by ``zbarimg``. A session that passed a
second factor is minted through the runtime's sessions (``amr`` with ``mfa``),
standing in for the TOTP verify route that is built elsewhere.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from keystile import testing
from keystile.clock import ManualClock
from keystile.runtime import Runtime
from keystile.settings import Settings
from keystile.strategies.totp.qr import qr_png
from keystile.strategies.totp.rfc6238 import time_step
from keystile.strategies.totp.uri import parse_key_uri
from keystile.web.app import create_app
from tests.servers import LOOPBACK
from tests.strategies.totp.helpers import needs_oathtool, oathtool
from tests.strategies.totp.test_qr import needs_zbarimg, zbarimg

pytestmark = needs_oathtool

PASSWORD = "correct horse battery"
ALICE = "alice@example.com"
SETUP = "/auth/user/totp/setup"
CONFIRM = "/auth/user/totp/confirm_setup"
DISABLE = "/auth/user/totp/disable"


@dataclass
class Service:
    """The running app, its runtime and clock, and ways to get bearer tokens."""

    client: TestClient
    runtime: Runtime
    clock: ManualClock

    def user(self, email: str = ALICE) -> str:
        """Create a user with a password; a bearer token of a password-only session."""
        anyio.run(self.runtime.password.create_user, email, PASSWORD)
        response = self.client.post(
            "/auth/user/password/sign_in", json={"user": {"email": email, "password": PASSWORD}}
        )
        assert response.status_code == 200
        token: str = response.json()["token"]
        return token

    def mfa_token(self, email: str = ALICE) -> str:
        """A bearer token of a session that passed a second factor now."""
        user = anyio.run(self.runtime.find_user, email)
        assert user is not None
        start = functools.partial(
            self.runtime.sessions.start,
            user,
            strategies=("password", "totp"),
            amr=("pwd", "otp", "mfa"),
        )
        return anyio.run(start).token

    def post(self, path: str, token: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        if body is None:
            return self.client.post(path, headers=headers)
        return self.client.post(path, headers=headers, json=body)

    def setup(self, token: str) -> dict[str, str]:
        response = self.post(SETUP, token)
        assert response.status_code == 200, response.text
        body: dict[str, str] = response.json()
        return body

    def confirm(self, token: str, setup_token: str, code: str) -> Any:
        return self.post(CONFIRM, token, {"user": {"setup_token": setup_token, "code": code}})

    def code(self, secret: str, offset: int = 0) -> str:
        """``oathtool``'s code for ``secret`` at the clock's time plus ``offset`` seconds."""
        return oathtool(secret, self.clock.now() + timedelta(seconds=offset))

    def enable(self, token: str) -> dict[str, str]:
        """Set up and confirm an authenticator; the setup answer."""
        started = self.setup(token)
        response = self.confirm(token, started["setup_token"], self.code(started["secret"]))
        assert response.status_code == 200, response.text
        return started

    def rows(self, sql: str) -> list[dict[str, Any]]:
        return testing.rows(self.runtime, sql)

    def notices(self, count: int) -> list[str]:
        """The subjects and bodies of the first ``count`` messages sent (waits for delivery)."""
        mailbox = self.runtime.mailbox
        assert mailbox is not None
        deadline = time.monotonic() + 5
        while len(mailbox) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        entries = list(reversed(mailbox.entries()))
        assert len(entries) >= count
        return [f"{e.message.subject}\n{e.message.text}\n{e.message.html}" for e in entries[:count]]


@pytest.fixture
def service(settings: Settings, clock: ManualClock) -> Iterator[Service]:
    """Keystile's app (its enrolment routes mounted by the runtime), started, on each backend."""
    app = create_app(settings, clock=clock)
    runtime: Runtime = app.state.keystile.runtime
    with TestClient(app, client=LOOPBACK) as client:
        yield Service(client=client, runtime=runtime, clock=clock)


@needs_zbarimg
def test_qr_decodes_to_the_uri_and_an_oathtool_code_enables(
    service: Service, tmp_path: Path
) -> None:
    """The setup answer's QR (as PNG) reads back as its totp_url, whose secret is the one
    returned; a code oathtool makes from it confirms, and its step is recorded."""
    token = service.user()
    started = service.setup(token)
    assert set(started) == {"setup_token", "totp_url", "secret", "qr_svg"}
    assert started["qr_svg"].startswith("<svg")
    decoded = zbarimg(qr_png(started["totp_url"]), tmp_path)
    assert decoded == started["totp_url"]
    key = parse_key_uri(decoded)
    assert (key.issuer, key.account) == ("Keystile", ALICE)
    assert key.secret.hex() == parse_key_uri(started["totp_url"]).secret.hex()
    assert decoded.split("secret=")[1].split("&")[0] == started["secret"]

    response = service.confirm(token, started["setup_token"], service.code(started["secret"]))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "enabled"
    # A first enrolment brings the first batch of recovery codes (API.md), shown this once.
    assert len(set(body["recovery_codes"])) == 10
    assert response.headers["cache-control"] == "no-store"
    [row] = service.rows("SELECT confirmed_at, last_step FROM keystile_totp_authenticators")
    assert row["confirmed_at"] is not None
    assert row["last_step"] == time_step(service.clock.now())


def test_the_same_code_again_is_refused(service: Service) -> None:
    """A confirmed setup's token and code are spent: the same request again answers 401."""
    token = service.user()
    started = service.setup(token)
    code = service.code(started["secret"])
    assert service.confirm(token, started["setup_token"], code).status_code == 200
    again = service.confirm(token, started["setup_token"], code)
    assert again.status_code == 401
    assert again.json() == {"error": "authentication_failed", "message": "Authentication failed."}


@pytest.mark.parametrize(
    ("offset", "status"), [(-60, 401), (-30, 200), (0, 200), (30, 200), (60, 401)]
)
def test_only_codes_within_one_step_of_now_confirm(
    service: Service, offset: int, status: int
) -> None:
    """With the default window of one step, codes from two steps ago (or ahead) are refused."""
    token = service.user()
    started = service.setup(token)
    response = service.confirm(
        token, started["setup_token"], service.code(started["secret"], offset)
    )
    assert response.status_code == status


def test_a_wrong_code_leaves_the_token_usable_and_is_audited(service: Service) -> None:
    """After a code from two steps ago fails (recorded as a failed confirm_setup), the same
    setup token still confirms with a current code."""
    token = service.user()
    started = service.setup(token)
    old = service.confirm(token, started["setup_token"], service.code(started["secret"], -60))
    assert old.status_code == 401
    current = service.confirm(token, started["setup_token"], service.code(started["secret"]))
    assert current.status_code == 200
    events = service.rows(
        "SELECT action, success FROM keystile_audit_events WHERE strategy = 'totp' ORDER BY id"
    )
    assert [(e["action"], bool(e["success"])) for e in events] == [
        ("setup", True),
        ("confirm_setup", False),
        ("confirm_setup", True),
    ]


def test_every_confirmation_is_counted_by_the_limit(service: Service) -> None:
    """Five attempts per five minutes by default: the sixth answers 429 with Retry-After,
    even with a correct code."""
    token = service.user()
    started = service.setup(token)
    for _ in range(5):
        assert service.confirm(token, started["setup_token"], "000000").status_code == 401
    refused = service.confirm(token, started["setup_token"], service.code(started["secret"]))
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_attempts"
    assert int(refused.headers["retry-after"]) > 0


def test_another_users_setup_token_is_refused(service: Service) -> None:
    """A setup token is bound to the user it was issued to."""
    alice = service.user()
    bob = service.user("bob@example.com")
    started = service.setup(alice)
    stolen = service.confirm(bob, started["setup_token"], service.code(started["secret"]))
    assert stolen.status_code == 401
    assert service.rows("SELECT confirmed_at FROM keystile_totp_authenticators") == [
        {"confirmed_at": None}
    ]


def test_a_new_setup_supersedes_the_earlier_one(service: Service) -> None:
    """Only the newest pending setup can be confirmed; the earlier token stops working."""
    token = service.user()
    first = service.setup(token)
    second = service.setup(token)
    assert (
        service.confirm(token, first["setup_token"], service.code(first["secret"])).status_code
        == 401
    )
    confirmed = service.confirm(token, second["setup_token"], service.code(second["secret"]))
    assert confirmed.status_code == 200


def test_setup_while_enabled_answers_409_without_a_recent_second_factor(service: Service) -> None:
    """A password-only session, or one whose second factor is over five minutes old, cannot
    start replacing the authenticator; nothing is stored."""
    token = service.user()
    service.enable(token)
    refused = service.post(SETUP, token)
    assert refused.status_code == 409
    assert refused.json()["error"] == "already_enrolled"
    stale = service.mfa_token()
    service.clock.advance(timedelta(minutes=5, seconds=1))
    assert service.post(SETUP, stale).status_code == 409
    assert len(service.rows("SELECT id FROM keystile_totp_authenticators")) == 1


def test_a_recent_second_factor_replaces_the_authenticator_on_confirmation(
    service: Service,
) -> None:
    """With a fresh second factor, setup is allowed; the old authenticator stays active
    until the new one is confirmed, then only the new one remains. The user is told each
    time, and no notice holds a secret or a code."""
    token = service.user()
    first = service.enable(token)
    [old] = service.rows("SELECT id FROM keystile_totp_authenticators")
    mfa = service.mfa_token()
    second = service.setup(mfa)
    assert service.rows(
        "SELECT id FROM keystile_totp_authenticators WHERE confirmed_at IS NOT NULL"
    ) == [old]
    code = service.code(second["secret"])
    assert service.confirm(mfa, second["setup_token"], code).status_code == 200
    rows = service.rows("SELECT id, confirmed_at FROM keystile_totp_authenticators")
    assert len(rows) == 1
    assert rows[0]["id"] != old["id"]
    assert rows[0]["confirmed_at"] is not None

    enabled, replaced = service.notices(2)
    assert "Two-step verification was turned on" in enabled
    assert "authenticator app of your Keystile account was replaced" in replaced
    for notice in (enabled, replaced):
        assert first["secret"] not in notice
        assert second["secret"] not in notice
        assert code not in notice


def test_the_database_holds_no_secret_in_clear(service: Service, settings: Settings) -> None:
    """Neither the secret (raw, hex or base32) nor the setup token is stored anywhere:
    the secret is sealed, the token kept as a keyed hash."""
    token = service.user()
    started = service.enable(token)
    secret = parse_key_uri(started["totp_url"]).secret
    forbidden = [started["secret"], secret.hex(), started["setup_token"]]
    for table in ("keystile_totp_authenticators", "keystile_tokens", "keystile_audit_events"):
        dump = repr(service.rows(f"SELECT * FROM {table}"))  # noqa: S608 (fixed names)
        for value in forbidden:
            assert value not in dump
            assert value.lower() not in dump.lower()
    if settings.database_url.startswith("sqlite:///"):
        path = Path(settings.database_url.removeprefix("sqlite:///"))
        raw = b"".join(
            candidate.read_bytes()
            for candidate in (path, path.with_name(path.name + "-wal"))
            if candidate.exists()
        )
        assert secret not in raw
        for value in forbidden:
            assert value.encode() not in raw


def test_disable_needs_a_recent_second_factor(service: Service) -> None:
    """403 insufficient_authentication for a password-only session and for a second factor
    over five minutes old; with a fresh one the authenticator is removed and the user told."""
    token = service.user()
    service.enable(token)
    refused = service.post(DISABLE, token)
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "insufficient_authentication",
        "message": "Turning off two-step verification needs a recent second factor.",
    }
    stale = service.mfa_token()
    service.clock.advance(timedelta(minutes=6))
    assert service.post(DISABLE, stale).status_code == 403
    assert len(service.rows("SELECT id FROM keystile_totp_authenticators")) == 1

    fresh = service.mfa_token()
    disabled = service.post(DISABLE, fresh)
    assert disabled.status_code == 200
    assert disabled.json() == {"status": "disabled"}
    assert service.rows("SELECT id FROM keystile_totp_authenticators") == []
    assert "Two-step verification was turned off" in service.notices(2)[1]
    # Off now: a password-only session may enrol again.
    assert service.post(SETUP, token).status_code == 200


MALFORMED: list[tuple[str, Any, str]] = [
    ("no code", {"user": {"setup_token": "t"}}, "user.code"),
    ("no token", {"user": {"code": "123456"}}, "user.setup_token"),
    ("code a number", {"user": {"setup_token": "t", "code": 123456}}, "user.code"),
    ("extra field", {"user": {"setup_token": "t", "code": "1", "x": 1}}, "user.x"),
    ("token too long", {"user": {"setup_token": "t" * 129, "code": "1"}}, "user.setup_token"),
    ("no user", {}, "user"),
]


@pytest.mark.parametrize(
    ("body", "field"), [(b, f) for _, b, f in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_a_malformed_confirmation_answers_400(service: Service, body: Any, field: str) -> None:
    """400 invalid_request naming the field; nothing is counted or stored."""
    token = service.user()
    response = service.post(CONFIRM, token, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert field in response.json()["fields"]
    assert service.rows("SELECT id FROM keystile_audit_events WHERE strategy = 'totp'") == []


def test_a_body_that_is_not_json_answers_400(service: Service) -> None:
    """Malformed JSON is invalid_request too."""
    token = service.user()
    response = service.client.post(
        CONFIRM,
        content=b"{not json",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", [SETUP, CONFIRM, DISABLE])
def test_every_route_needs_a_bearer_token(service: Service, path: str) -> None:
    """401 unauthenticated with WWW-Authenticate: Bearer, without and with a bad token."""
    body = {"user": {"setup_token": "t", "code": "123456"}}
    missing = service.client.post(path, json=body)
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthenticated"
    assert missing.headers["www-authenticate"] == "Bearer"
    forged = service.post(path, "not-a-token", body)
    assert forged.status_code == 401
    assert forged.json()["error"] == "unauthenticated"
