"""The recovery-code modes over HTTP: rotate_on_use, single_code, and recovery codes turned off.

``batch`` (the default) is what ``test_routes.py`` exercises.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
from fastapi.testclient import TestClient

from keystile import testing
from keystile.clock import ManualClock
from keystile.runtime import Runtime
from keystile.settings import Settings
from keystile.web.recovery import recovery_code_available
from tests.strategies.recovery_code.helpers import (
    ALICE,
    BOB,
    DISPLAY_FORM,
    PASSWORD,
    PREFIX,
    App,
    app_of,
)
from tests.strategies.totp.helpers import needs_oathtool, oathtool


def make_app(
    make_client: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    clock: ManualClock,
    **overrides: object,
) -> App:
    settings = make_settings(
        password_sign_in_rate="1000/10m", recovery_code_rate="100/15m", **overrides
    )
    return app_of(make_client(settings), clock)


def test_rotate_on_use_hands_out_a_code_that_works_next_time(
    make_client: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    clock: ManualClock,
) -> None:
    """rotate_on_use: each answer carries one new code; it works next time, the used one never
    again, and the count of unused codes stays at ten."""
    app = make_app(make_client, make_settings, clock, recovery_code_mode="rotate_on_use")
    codes = app.user()
    first = app.verify(codes[0], mfa_token=app.mfa_token()).json()
    new = first["recovery_code"]
    assert DISPLAY_FORM.match(new)
    assert new not in codes
    assert first["recovery_codes_remaining"] == 10
    assert app.verify(codes[0], mfa_token=app.mfa_token()).status_code == 401
    second = app.verify(new, mfa_token=app.mfa_token())
    assert second.status_code == 200
    newer = second.json()["recovery_code"]
    assert newer != new
    assert app.verify(new, mfa_token=app.mfa_token()).status_code == 401
    stepped = app.verify(newer, bearer=second.json()["token"])  # step-up rotates as well
    assert stepped.status_code == 200
    assert DISPLAY_FORM.match(stepped.json()["recovery_code"])
    status = app.status(stepped.json()["token"]).json()
    assert (status["remaining"], status["total"]) == (10, 13)


def test_single_code_generates_one_code_that_each_generation_replaces(
    make_client: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    clock: ManualClock,
) -> None:
    """single_code: a generation answers one code; the next generation replaces it."""
    app = make_app(make_client, make_settings, clock, recovery_code_mode="single_code")
    [code] = app.user()
    first = app.verify(code, mfa_token=app.mfa_token())
    assert first.json()["recovery_codes_remaining"] == 0
    bearer = first.json()["token"]
    one = app.generate(bearer).json()["recovery_codes"]
    two = app.generate(bearer).json()["recovery_codes"]
    assert len(one) == len(two) == 1
    assert DISPLAY_FORM.match(two[0])
    assert app.verify(one[0], mfa_token=app.mfa_token()).status_code == 401
    answer = app.verify(two[0], mfa_token=app.mfa_token())
    assert answer.status_code == 200
    assert answer.json()["recovery_codes_remaining"] == 0
    assert "recovery_code" not in answer.json()


def _store_batch_while_enabled(settings: Settings, clock: ManualClock) -> list[str]:
    """Alice with a password, TOTP and a batch, made while recovery codes were on."""
    runtime = Runtime(settings, clock=clock)

    async def work() -> list[str]:
        user = await runtime.password.create_user(ALICE, PASSWORD)
        await testing.enrol_totp(runtime, ALICE)
        assert runtime.recovery_codes is not None
        return list((await runtime.recovery_codes.generate(user)).codes)

    try:
        return anyio.run(work)
    finally:
        runtime.close()


@needs_oathtool
def test_turned_off_no_routes_no_batch_and_sign_ins_offer_totp_only(
    make_client: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    clock: ManualClock,
) -> None:
    """recovery_codes_enabled=false: a stored batch stops working (sign-in offers only totp,
    the recovery routes are not mounted: 404), TOTP enrolment hands out no batch, and the
    helpers say so."""
    codes = _store_batch_while_enabled(make_settings(), clock)
    settings = make_settings(recovery_codes_enabled=False)
    client = make_client(settings)
    app = app_of(client, clock)
    assert recovery_code_available(settings) is False
    keystile = client.app.state.keystile  # type: ignore[attr-defined]
    assert keystile.recovery_codes is None
    body = app.password(ALICE)
    assert body["methods"] == ["totp"]
    for path in ("verify", "reset_mfa", "generate"):
        answer = client.post(
            f"{PREFIX}/{path}", json={"user": {"mfa_token": body["mfa_token"], "code": codes[0]}}
        )
        assert answer.status_code == 404, path
    assert client.get(f"{PREFIX}/status").status_code == 404
    with pytest.raises(LookupError):
        anyio.run(app.runtime.sign_in.recovery_code, body["mfa_token"], codes[0])
    app.user(BOB, totp=False)
    headers = {"Authorization": f"Bearer {app.password(BOB)['token']}"}
    started = client.post("/auth/user/totp/setup", headers=headers).json()
    confirm = client.post(
        "/auth/user/totp/confirm_setup",
        headers=headers,
        json={
            "user": {
                "setup_token": started["setup_token"],
                "code": oathtool(started["secret"], clock.now()),
            }
        },
    )
    assert confirm.status_code == 200, confirm.text
    assert confirm.json() == {"status": "enabled"}
    assert app.password(BOB)["methods"] == ["totp"]


def test_turned_on_sign_ins_offer_both_methods(
    make_client: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    clock: ManualClock,
) -> None:
    """The counterpart of the test above: with codes on, a user holding some is offered both."""
    app = make_app(make_client, make_settings, clock)
    app.user()
    assert recovery_code_available(make_settings()) is True
    assert app.password()["methods"] == ["totp", "recovery_code"]
