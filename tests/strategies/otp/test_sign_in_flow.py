"""The OTP flow end to end, with codes delivered by a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import anyio
from fastapi import FastAPI
from fastapi.testclient import TestClient

from keystile.clock import ManualClock
from keystile.crypto.alphabets import UNAMBIGUOUS_UPPERCASE
from keystile.settings import Settings
from tests.strategies.otp.conftest import Inbox
from tests.strategies.otp.helpers import add_user, request_code, sign_in

EMAIL = "alice@example.com"


def test_request_mails_a_code_that_signs_in_once(
    otp_client: TestClient, inbox: Inbox, settings: Settings
) -> None:
    """The mail arrives with a code from the alphabet; it signs in; a second use fails."""
    add_user(settings, EMAIL)
    response = request_code(otp_client, EMAIL)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    [mail] = inbox.wait_for(1)
    assert mail["To"] == EMAIL
    assert mail["From"] == "keystile@example.test"
    code = inbox.code_in(mail)
    assert len(code) == 6
    assert set(code) <= set(UNAMBIGUOUS_UPPERCASE)
    plain = mail.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "10 minutes" in plain.get_content()

    first = sign_in(otp_client, EMAIL, code)
    assert first.status_code == 200
    assert first.json()["authentication_strategies"] == ["otp"]
    assert first.json()["user"]["email"] == EMAIL
    assert first.headers["cache-control"] == "no-store"
    me = otp_client.get("/auth/me", headers={"Authorization": f"Bearer {first.json()['token']}"})
    assert me.json()["amr"] == ["otp"]

    second = sign_in(otp_client, EMAIL, code)
    assert second.status_code == 401
    assert second.json()["error"] == "authentication_failed"


def test_lower_case_and_padded_codes_and_identities_sign_in(
    otp_client: TestClient, inbox: Inbox, settings: Settings
) -> None:
    """Codes are trimmed and upper-cased; identities are normalised."""
    add_user(settings, EMAIL)
    request_code(otp_client, "  Alice@EXAMPLE.com ")
    code = inbox.code_in(inbox.wait_for(1)[0])
    assert sign_in(otp_client, "ALICE@example.com", f"  {code.lower()}\t").status_code == 200
    request_code(otp_client, EMAIL)
    code = inbox.code_in(inbox.wait_for(2)[1])
    assert sign_in(otp_client, EMAIL, f" {code} ").status_code == 200


def test_an_older_code_fails_after_a_new_request(
    otp_client: TestClient, inbox: Inbox, settings: Settings
) -> None:
    """Requesting a new code invalidates the outstanding one."""
    add_user(settings, EMAIL)
    request_code(otp_client, EMAIL)
    old = inbox.code_in(inbox.wait_for(1)[0])
    request_code(otp_client, EMAIL)
    new = inbox.code_in(inbox.wait_for(2)[1])
    if old == new:  # one chance in 85 million; the check below would be meaningless
        return
    assert sign_in(otp_client, EMAIL, old).status_code == 401
    assert sign_in(otp_client, EMAIL, new).status_code == 200


def test_five_wrong_codes_then_the_right_one_fails(
    otp_client: TestClient, inbox: Inbox, settings: Settings
) -> None:
    """After five misses the right code is refused (the limit and the burn both hold)."""
    add_user(settings, EMAIL)
    request_code(otp_client, EMAIL)
    code = inbox.code_in(inbox.wait_for(1)[0])
    wrong = "AAAAAA" if code != "AAAAAA" else "BBBBBB"
    for _ in range(5):
        assert sign_in(otp_client, EMAIL, wrong).status_code == 401
    refused = sign_in(otp_client, EMAIL, code)
    assert refused.status_code in (401, 429)
    assert "token" not in refused.json()


def test_five_wrong_codes_burn_the_code_even_under_a_generous_limit(
    make_client: Callable[[Settings], TestClient],
    otp_settings: Callable[..., Settings],
    inbox: Inbox,
    settings: Settings,
) -> None:
    """With the per-identity limit out of the way, the code itself is burned at 5 misses."""
    client = make_client(otp_settings(otp_sign_in_rate="100/10m"))
    add_user(settings, EMAIL)
    request_code(client, EMAIL)
    code = inbox.code_in(inbox.wait_for(1)[0])
    wrong = "AAAAAA" if code != "AAAAAA" else "BBBBBB"
    for _ in range(5):
        assert sign_in(client, EMAIL, wrong).status_code == 401
    burned = sign_in(client, EMAIL, code)
    assert burned.status_code == 401
    assert burned.json()["error"] == "authentication_failed"


def test_four_wrong_codes_leave_the_right_one_usable(
    otp_client: TestClient, inbox: Inbox, settings: Settings
) -> None:
    """The burn happens at the limit, not before."""
    add_user(settings, EMAIL)
    request_code(otp_client, EMAIL)
    code = inbox.code_in(inbox.wait_for(1)[0])
    wrong = "AAAAAA" if code != "AAAAAA" else "BBBBBB"
    for _ in range(4):
        assert sign_in(otp_client, EMAIL, wrong).status_code == 401
    assert sign_in(otp_client, EMAIL, code).status_code == 200


def test_an_expired_code_fails(
    otp_client: TestClient, inbox: Inbox, settings: Settings, clock: ManualClock
) -> None:
    """At its lifetime (10 minutes) the code stops working."""
    add_user(settings, EMAIL)
    request_code(otp_client, EMAIL)
    code = inbox.code_in(inbox.wait_for(1)[0])
    clock.advance(timedelta(minutes=10))
    assert sign_in(otp_client, EMAIL, code).status_code == 401


def test_a_code_just_before_expiry_works(
    otp_client: TestClient, inbox: Inbox, settings: Settings, clock: ManualClock
) -> None:
    """One second before expiry the code is still good."""
    add_user(settings, EMAIL)
    request_code(otp_client, EMAIL)
    code = inbox.code_in(inbox.wait_for(1)[0])
    clock.advance(timedelta(minutes=10) - timedelta(seconds=1))
    assert sign_in(otp_client, EMAIL, code).status_code == 200


def test_a_code_is_bound_to_its_identity(
    otp_client: TestClient, inbox: Inbox, settings: Settings
) -> None:
    """Bob cannot use the code mailed to Alice."""
    add_user(settings, EMAIL)
    add_user(settings, "bob@example.com")
    request_code(otp_client, EMAIL)
    code = inbox.code_in(inbox.wait_for(1)[0])
    assert sign_in(otp_client, "bob@example.com", code).status_code == 401
    assert sign_in(otp_client, EMAIL, code).status_code == 200


def test_unknown_identity_gets_ok_and_no_mail(otp_client: TestClient, inbox: Inbox) -> None:
    """Registration off: an unknown identity is answered ok, nothing is sent, no sign-in."""
    response = request_code(otp_client, "nobody@example.com")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    request_code(otp_client, "nobody2@example.com")
    # Every delivery the requests scheduled has finished (no sleep and hope): none was a mail.
    app = otp_client.app
    assert isinstance(app, FastAPI)
    assert otp_client.portal is not None
    otp_client.portal.call(app.state.keystile.runtime.drain_deliveries)
    assert inbox.mails == []


def test_registration_creates_the_user_on_a_correct_code_only(
    make_client: Callable[[Settings], TestClient],
    otp_settings: Callable[..., Settings],
    inbox: Inbox,
) -> None:
    """With registration on, a new identity gets a code; a wrong code creates nothing."""
    client = make_client(otp_settings(otp_registration_enabled=True))
    request_code(client, "New@Example.com")
    [mail] = inbox.wait_for(1)
    assert mail["To"] == "new@example.com"
    code = inbox.code_in(mail)
    wrong = "AAAAAA" if code != "AAAAAA" else "BBBBBB"
    assert sign_in(client, "new@example.com", wrong).status_code == 401
    runtime = client.app.state.keystile.runtime  # type: ignore[attr-defined]
    assert anyio.run(runtime.find_user, "new@example.com") is None
    created = sign_in(client, "new@example.com", code)
    assert created.status_code == 200
    assert created.json()["user"]["email"] == "new@example.com"
    assert anyio.run(runtime.find_user, "new@example.com") is not None
