"""Recovery codes over HTTP: verify, step-up, generate, status, reset, and what is never stored.

The app is Keystile's own (``create_app``) on SQLite and PostgreSQL. Users get
TOTP (``keystile.testing.enrol_totp``) and a batch the way the service makes
one; sessions come from the real routes (password, then a recovery code).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from keystile.clock import ManualClock
from keystile.settings import Settings
from keystile.strategies.recovery_code.core import display
from tests.strategies.recovery_code.helpers import (
    ALICE,
    BOB,
    DISPLAY_FORM,
    App,
    app_of,
    dump,
    generate,
    store_codes,
)
from tests.strategies.totp.helpers import needs_oathtool, oathtool

CODE_FAILURES = (
    "SELECT action FROM keystile_audit_events WHERE strategy = 'recovery_code' AND success = false"
)


@pytest.fixture
def app(
    make_client: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    clock: ManualClock,
) -> App:
    """The app with room for many sign-ins and code uses per user."""
    settings = make_settings(password_sign_in_rate="1000/10m", recovery_code_rate="100/15m")
    return app_of(make_client(settings), clock)


def test_a_generated_batch_is_ten_distinct_codes_in_groups(app: App) -> None:
    """POST generate with a fresh second factor: 201, ten distinct XXXX-XXXX-XXXX-XXXX codes,
    generated_at now, and every earlier code stops working."""
    codes = app.user()
    bearer = app.sign_in(codes[0])
    answer = app.generate(bearer)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert set(body) == {"recovery_codes", "generated_at"}
    fresh = body["recovery_codes"]
    assert len(fresh) == len(set(fresh)) == 10
    assert all(DISPLAY_FORM.match(code) for code in fresh)
    assert body["generated_at"].startswith(app.clock.now().strftime("%Y-%m-%dT%H:%M:%S"))
    assert answer.headers["cache-control"] == "no-store"
    assert not set(fresh) & set(codes)
    old = app.verify(codes[1], mfa_token=app.mfa_token())
    assert old.status_code == 401
    assert old.json()["error"] == "authentication_failed"
    assert app.verify(fresh[0], mfa_token=app.mfa_token()).status_code == 200


def test_a_code_finishes_a_sign_in_once(app: App) -> None:
    """mfa_token + code: authenticated with password and recovery_code, the time it was used
    and 9 remaining; /auth/me carries both; the same code again is 401."""
    codes = app.user()
    answer = app.verify(codes[3], mfa_token=app.mfa_token())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["authentication_strategies"] == ["password", "recovery_code"]
    assert body["recovery_codes_remaining"] == 9
    assert "recovery_code" not in body  # batch mode: no replacement
    used_at = body["recovery_code_used_at"]
    assert used_at.startswith(app.clock.now().strftime("%Y-%m-%dT%H:%M:%S"))
    me = app.me(body["token"]).json()
    assert me["authentication_strategies"] == ["password", "recovery_code"]
    assert me["amr"] == ["pwd", "otp", "mfa"]
    assert me["recovery_code_used_at"] == used_at
    again = app.verify(codes[3], mfa_token=app.mfa_token())
    assert again.status_code == 401
    assert again.json()["error"] == "authentication_failed"


def test_codes_work_in_any_order(app: App) -> None:
    """The last, the first and a middle code of the batch each finish a sign-in."""
    codes = app.user()
    remaining = [
        app.verify(code, mfa_token=app.mfa_token()).json()["recovery_codes_remaining"]
        for code in (codes[9], codes[0], codes[5])
    ]
    assert remaining == [9, 8, 7]


def test_another_users_code_never_matches(app: App) -> None:
    """Bob's code on Alice's mfa_token is 401, and Bob's code still works for Bob."""
    app.user(ALICE)
    bobs = app.user(BOB)
    wrong = app.verify(bobs[0], mfa_token=app.mfa_token(ALICE))
    assert wrong.status_code == 401
    assert app.verify(bobs[0], mfa_token=app.mfa_token(BOB)).status_code == 200


def test_typed_variants_of_a_code_are_accepted(app: App) -> None:
    """Lower case, no hyphens, spaces, and I/L/O typed for 1/1/0 all normalise to the code."""
    app.user()
    codes = ["10AB10CD10EF10GH", "0011AAAA2222BBBB", "1100CCCC3333DDDD", "0101EEEE4444FFFF"]
    store_codes(app.runtime, ALICE, codes)
    typed = [
        display(codes[0]).lower(),  # 10ab-10cd-10ef-10gh
        codes[1],  # no hyphens
        " ".join(display(codes[2]).split("-")),  # groups with spaces
        "OlOi-EEEE-4444-FFFF",  # O, l, O, i for 0, 1, 0, 1
    ]
    for text in typed:
        answer = app.verify(text, mfa_token=app.mfa_token())
        assert answer.status_code == 200, (text, answer.text)
    assert app.verify(codes[3], mfa_token=app.mfa_token()).status_code == 401  # used up


@pytest.mark.parametrize(
    "typed",
    [
        "ABCD-EFGH",  # too short
        "ABCD-EFGH-JKMN-PQRS-T",  # too long
        "UUUU-UUUU-UUUU-UUUU",  # U is not a symbol
        "ABCD-EFGH-JKMN-PQR\u0130",  # non-ASCII look-alike
        "ABCD_EFGH_JKMN_PQRS",  # another separator
        "",
    ],
)
def test_malformed_input_is_400_and_spends_no_attempt(
    make_client: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    clock: ManualClock,
    typed: str,
) -> None:
    """Input that cannot be a code: 400 invalid_request naming user.code, no failure audited,
    neither the per-user limit (5) nor the token's burn (5) moves: the right code then works."""
    app = app_of(make_client(make_settings()), clock)
    codes = app.user()
    token = app.mfa_token()
    for _ in range(6):
        answer = app.verify(typed, mfa_token=token)
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body["error"] == "invalid_request"
        assert "user.code" in body["fields"]
    assert app.rows(CODE_FAILURES) == []
    assert app.verify(codes[0], mfa_token=token).status_code == 200


def test_step_up_with_a_code_gives_a_fresh_token(app: App) -> None:
    """Bearer + code: a new token whose auth_time is now; the old token is revoked."""
    codes = app.user()
    first = app.sign_in(codes[0])
    app.clock.advance(timedelta(minutes=30))
    stepped = app.verify(codes[1], bearer=first)
    assert stepped.status_code == 200, stepped.text
    body = stepped.json()
    assert body["recovery_codes_remaining"] == 8
    assert app.me(first).status_code == 401
    me = app.me(body["token"]).json()
    assert me["auth_time"].startswith(app.clock.now().strftime("%Y-%m-%dT%H:%M"))
    assert me["authentication_strategies"] == ["password", "recovery_code"]


def test_generate_without_a_recent_second_factor_is_403_with_a_challenge(app: App) -> None:
    """No token: 401. A password-only session: 403 insufficient_authentication asking for
    acr_values (RFC 9470). A second factor 6 minutes old: 403 with max_age="300"."""
    assert app.generate("").status_code == 401
    app.user(BOB, totp=False)
    password_only = app.password(BOB)["token"]
    refused = app.generate(password_only)
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_authentication"
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="insufficient_user_authentication"')
    assert "acr_values=" in challenge
    codes = app.user(ALICE)
    bearer = app.sign_in(codes[0])
    app.clock.advance(timedelta(minutes=6))
    stale = app.generate(bearer)
    assert stale.status_code == 403
    assert 'max_age="300"' in stale.headers["www-authenticate"]
    assert "acr_values" not in stale.headers["www-authenticate"]
    assert app.verify(codes[1], mfa_token=app.mfa_token()).status_code == 200  # nothing replaced


def test_status_counts_what_remains(app: App) -> None:
    """Status: none before a batch; 10 of 10; low once 2 or fewer remain."""
    app.user(BOB, totp=False)
    none = app.status(app.password(BOB)["token"]).json()
    assert none == {
        "configured": False,
        "remaining": 0,
        "total": 0,
        "generated_at": None,
        "low": True,
    }
    codes = app.user(ALICE)
    bearer = app.sign_in(codes[0])
    after_one = app.status(bearer).json()
    assert (after_one["configured"], after_one["remaining"], after_one["total"]) == (True, 9, 10)
    assert after_one["low"] is False
    assert after_one["generated_at"].startswith(app.clock.now().strftime("%Y-%m-%dT%H:%M"))
    for code in codes[1:7]:
        bearer = app.verify(code, bearer=bearer).json()["token"]
    three = app.status(bearer).json()
    assert (three["remaining"], three["low"]) == (3, False)
    bearer = app.verify(codes[7], bearer=bearer).json()["token"]
    two = app.status(bearer).json()
    assert (two["remaining"], two["low"]) == (2, True)
    assert app.client.get("/auth/user/recovery_code/status").status_code == 401


@needs_oathtool
def test_reset_mfa_leaves_one_factor_that_can_enrol_again(app: App) -> None:
    """reset_mfa: amr ["pwd"], no TOTP, no codes, the other sessions revoked; a password then
    signs in alone, and a new TOTP setup confirms with a new batch of ten."""
    codes = app.user()
    other = app.sign_in(codes[0])
    answer = app.reset_mfa(codes[1], app.mfa_token())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["authentication_strategies"] == ["password"]
    bearer = body["token"]
    assert app.me(bearer).json()["amr"] == ["pwd"]
    assert app.me(other).status_code == 401
    assert app.rows("SELECT id FROM keystile_totp_authenticators") == []
    assert app.rows("SELECT id FROM keystile_recovery_codes") == []
    assert [
        row["action"]
        for row in app.rows(
            "SELECT action FROM keystile_audit_events WHERE strategy = 'recovery_code' "
            "AND success = true ORDER BY id"
        )
    ] == ["verify", "reset_mfa"]
    signed_in = app.password()
    assert "token" in signed_in
    assert "mfa_required" not in signed_in
    headers = {"Authorization": f"Bearer {bearer}"}
    started = app.client.post("/auth/user/totp/setup", headers=headers).json()
    confirm = app.client.post(
        "/auth/user/totp/confirm_setup",
        headers=headers,
        json={
            "user": {
                "setup_token": started["setup_token"],
                "code": oathtool(started["secret"], app.clock.now()),
            }
        },
    )
    assert confirm.status_code == 200, confirm.text
    fresh = confirm.json()["recovery_codes"]
    assert len(set(fresh)) == 10
    assert app.verify(fresh[0], mfa_token=app.mfa_token()).status_code == 200


def test_reset_mfa_needs_an_mfa_token(app: App) -> None:
    """reset_mfa with a code and no mfa_token: a missing field, 400 invalid_request naming
    it (API.md's error table); nothing is removed."""
    codes = app.user()
    answer = app.client.post(
        "/auth/user/recovery_code/reset_mfa", json={"user": {"code": codes[0]}}
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert "user.mfa_token" in answer.json()["fields"]
    assert len(app.rows("SELECT id FROM keystile_totp_authenticators")) == 1


def test_notices_say_what_happened_and_never_a_code(app: App) -> None:
    """A code used (second factor, step-up), a new batch, a reset: one notice each, naming what
    remains; no message, the raw database or the audit table holds any code in clear."""
    codes = app.user()
    bearer = app.sign_in(codes[0])
    bearer = app.verify(codes[1], bearer=bearer).json()["token"]
    fresh = app.generate(bearer).json()["recovery_codes"]
    assert app.reset_mfa(fresh[0], app.mfa_token()).status_code == 200
    messages = app.messages(4)
    assert len(messages) == 4
    assert "A recovery code was used" in messages[0]
    assert "9 recovery codes remain" in messages[0]
    assert "8 recovery codes remain" in messages[1]
    assert "New recovery codes were generated" in messages[2]
    assert "reset with a recovery code" in messages[3]
    secrets = [
        form
        for code in [*codes, *fresh]
        for form in (code, code.replace("-", ""), code.replace("-", "").lower())
    ]
    stored = dump(app.runtime)
    audit = str(app.rows("SELECT * FROM keystile_audit_events"))
    for secret in secrets:
        assert all(secret not in message for message in messages), secret
        assert secret not in stored, secret
        assert secret not in audit, secret


def test_recovery_routes_need_json_bodies_of_the_right_shape(app: App) -> None:
    """Missing code, a number, an unknown field: 400 invalid_request (no 422, no 500)."""
    for body in (
        {"user": {"mfa_token": "x"}},
        {"user": {"mfa_token": "x", "code": 1234}},
        {"user": {"code": "ABCD-EFGH-JKMN-PQRS", "extra": 1}},
        {},
    ):
        for path in ("verify", "reset_mfa"):
            answer = app.client.post(f"/auth/user/recovery_code/{path}", json=body)
            assert answer.status_code == 400, (path, body)
            assert answer.json()["error"] == "invalid_request"


def test_the_first_batch_stays_single_use_after_generate_elsewhere(app: App) -> None:
    """Generating for Bob leaves Alice's codes working (a batch is per user)."""
    alice = app.user(ALICE)
    app.user(BOB)
    generate(app.runtime, BOB)
    assert app.verify(alice[0], mfa_token=app.mfa_token(ALICE)).status_code == 200


def test_a_custom_code_length_is_what_the_document_states(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """KEYSTILE_RECOVERY_CODE_LENGTH=13: the OpenAPI document states 13 symbols, and a
    13-symbol code is read (a wrong one is 401, not the 400 of a malformed one)."""
    client = make_client(make_settings(recovery_code_length=13))
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    patterns = [
        field["pattern"]
        for name, schema in schemas.items()
        if name.startswith("RecoveryVerifyFields")
        for field in [schema["properties"]["code"]]
    ]
    assert patterns == [r"^[ -]*(?:[0-9A-TV-Za-tv-z][ -]*){13}$"]
    answer = client.post(
        "/auth/user/recovery_code/verify",
        json={"user": {"mfa_token": "x", "code": "ABCD-EFGH-JKMN-P"}},
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "authentication_failed"
