"""A second factor, once a user has one, holds on every path (the security review's findings).

Each test failed before its fix: TOTP guessing capped per day (and its odds checked), TOTP
turned off never opens an account that has an authenticator, a confirmed registration changes a
TOTP user's password only after the second factor and ends the other sessions, a reset by
recovery code kills the other pending sign-ins, and custom hooks see second-factor attempts.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from keystile import testing
from keystile.clock import ManualClock
from keystile.errors import (
    AuthenticationFailedError,
    ConfigurationError,
    TooManyAttemptsError,
    UnauthenticatedError,
)
from keystile.flows.sessions import Authenticated
from keystile.flows.sign_in import SecondFactorRequired
from keystile.limits.protection import Attempt, HookProtection
from keystile.runtime import Extensions, Runtime
from keystile.senders.base import Message
from keystile.settings import Settings
from tests.strategies.totp.helpers import oathtool

pytestmark = pytest.mark.anyio
EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new password"
LOOSE = {"password_sign_in_rate": "1000/10m", "totp_rate": "1000/5m"}


class Outbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    async def aclose(self) -> None:
        """Nothing to release."""


@pytest.fixture
async def runtime(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> AsyncIterator[Runtime]:
    runtime = Runtime(make_settings(**LOOSE), clock=clock)
    await runtime.password.create_user(EMAIL, PASSWORD)
    yield runtime
    await runtime.aclose()


async def held(runtime: Runtime, password: str = PASSWORD) -> SecondFactorRequired:
    result = await runtime.sign_in.password(EMAIL, password)
    assert isinstance(result, SecondFactorRequired)
    return result


async def test_wrong_totp_codes_are_capped_per_day(runtime: Runtime) -> None:
    """Twenty wrong codes a day, whatever the burst rate allows; the 21st is refused (429)."""
    await testing.enrol_totp(runtime, EMAIL)
    for _ in range(20):
        with pytest.raises(AuthenticationFailedError):
            await runtime.sign_in.totp((await held(runtime)).mfa_token, "000000")
    with pytest.raises(TooManyAttemptsError):
        await runtime.sign_in.totp((await held(runtime)).mfa_token, "000000")


def test_start_up_checks_the_odds_of_guessing_totp(make_settings: Callable[..., Settings]) -> None:
    """Production refuses a TOTP configuration that gives a guesser more than 1e-4 a day."""
    settings = make_settings(
        mode="production",
        password_hash_preset="rfc9106_low_memory",
        sender="smtp",
        smtp_host="127.0.0.1",
        totp_max_failures_per_day=100,
    )
    with pytest.raises(ConfigurationError) as caught:
        Runtime(settings)
    [problem] = [p for p in caught.value.problems if "TOTP" in p]
    assert problem.startswith("KEYSTILE_TOTP_MAX_FAILURES_PER_DAY")
    assert "3.00e-04" in problem


def test_required_policy_without_totp_is_refused(make_settings: Callable[..., Settings]) -> None:
    """mfa_policy=required with TOTP off could never finish a sign-in: refused in any mode."""
    with pytest.raises(ConfigurationError, match="KEYSTILE_MFA_POLICY"):
        Runtime(make_settings(mfa_policy="required", totp_enabled=False))


async def test_totp_turned_off_still_holds_a_user_who_has_an_authenticator(
    runtime: Runtime, make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """KEYSTILE_TOTP_ENABLED=false: the password alone still gets no session for alice."""
    await testing.enrol_totp(runtime, EMAIL)
    off = Runtime(make_settings(totp_enabled=False, **LOOSE), clock=clock)
    try:
        result = await off.sign_in.password(EMAIL, PASSWORD)
        assert isinstance(result, SecondFactorRequired)
    finally:
        await off.aclose()


async def test_a_confirmed_registration_waits_for_the_second_factor(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """A TOTP user's confirmed registration: the new password is not theirs until the second
    factor passes; then it is, and the sessions from before are ended."""
    outbox = Outbox()
    runtime = Runtime(
        make_settings(password_registration_enabled=True, **LOOSE),
        clock=clock,
        extensions=Extensions(sender=outbox),
    )
    try:
        await runtime.password.create_user(EMAIL, PASSWORD)
        secret = await testing.enrol_totp(runtime, EMAIL)
        earlier = await runtime.sign_in.totp(
            (await held(runtime)).mfa_token, oathtool(secret, clock.now())
        )
        await runtime.password.register(EMAIL, NEW_PASSWORD)
        await runtime.drain_deliveries()
        code = re.findall(r"\b[A-Z]{8}\b", outbox.messages[-1].text)[0]
        confirmed = await runtime.sign_in.confirm_registration(EMAIL, code)
        assert isinstance(confirmed, SecondFactorRequired)
        # Not yet: the old password is still the first factor, the new one is not.
        await held(runtime, PASSWORD)
        with pytest.raises(AuthenticationFailedError):
            await runtime.sign_in.password(EMAIL, NEW_PASSWORD)
        clock.advance(timedelta(seconds=30))
        done = await runtime.sign_in.totp(confirmed.mfa_token, oathtool(secret, clock.now()))
        assert isinstance(done, Authenticated)
        await held(runtime, NEW_PASSWORD)  # now it is alice's password
        with pytest.raises(UnauthenticatedError):  # and the earlier session is over
            await runtime.sessions.verify(earlier.token)
    finally:
        await runtime.aclose()


async def test_a_recovery_code_reset_kills_the_other_pending_sign_ins(runtime: Runtime) -> None:
    """After reset_mfa, an MFA token issued before it cannot finish a sign-in any more."""
    await testing.enrol_totp(runtime, EMAIL)
    user = await runtime.find_user(EMAIL)
    assert user is not None
    assert runtime.recovery_codes is not None
    batch = await runtime.recovery_codes.generate(user)
    other = await held(runtime)
    await runtime.sign_in.reset_mfa((await held(runtime)).mfa_token, batch.codes[0])
    secret = await testing.enrol_totp(runtime, EMAIL)
    with pytest.raises(AuthenticationFailedError):
        await runtime.sign_in.totp(other.mfa_token, oathtool(secret, runtime.clock.now()))


async def test_custom_hooks_see_second_factor_attempts(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """A hook added through Extensions is asked about TOTP attempts too (action "verify")."""
    seen: list[str] = []

    def hook(attempt: Attempt) -> bool:
        seen.append(f"{attempt.strategy}:{attempt.action}")
        return attempt.action != "verify"

    runtime = Runtime(
        make_settings(**LOOSE),
        clock=clock,
        extensions=Extensions(hooks=(HookProtection(hook),)),
    )
    try:
        await runtime.password.create_user(EMAIL, PASSWORD)
        await testing.enrol_totp(runtime, EMAIL)
        with pytest.raises(TooManyAttemptsError):
            await runtime.sign_in.totp((await held(runtime)).mfa_token, "000000")
        assert "totp:verify" in seen
    finally:
        await runtime.aclose()


async def test_turning_totp_off_removes_the_recovery_codes(runtime: Runtime) -> None:
    """Disable: the codes that stood in for the authenticator go with it."""
    await testing.enrol_totp(runtime, EMAIL)
    user = await runtime.find_user(EMAIL)
    assert user is not None
    assert runtime.recovery_codes is not None
    assert runtime.totp_enrolment is not None
    await runtime.recovery_codes.generate(user)
    assert await runtime.totp_enrolment.disable(user, second_factor_recent=True)
    status = await runtime.recovery_codes.status(user)
    assert (status.remaining, status.total) == (0, 0)


async def test_argon2_stored_codes_verify_off_the_write_path(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """KEYSTILE_RECOVERY_CODE_STORAGE=argon2 (short custom codes): stored as Argon2id hashes,
    a code is found among the user's unused ones before the transaction and used once; with
    rotation the new code (also Argon2id) works next time."""
    runtime = Runtime(
        make_settings(
            recovery_code_storage="argon2",
            recovery_code_length=10,
            recovery_code_mode="rotate_on_use",
            **LOOSE,
        ),
        clock=clock,
    )
    try:
        await runtime.password.create_user(EMAIL, PASSWORD)
        await testing.enrol_totp(runtime, EMAIL)
        user = await runtime.find_user(EMAIL)
        assert user is not None
        assert runtime.recovery_codes is not None
        batch = await runtime.recovery_codes.generate(user)
        stored = testing.rows(runtime, "SELECT code_hash FROM keystile_recovery_codes")
        assert all(row["code_hash"].startswith("$argon2id$") for row in stored)
        used = await runtime.sign_in.recovery_code((await held(runtime)).mfa_token, batch.codes[3])
        new_code = used.details["recovery_code"]
        assert isinstance(new_code, str)
        with pytest.raises(AuthenticationFailedError):
            await runtime.sign_in.recovery_code((await held(runtime)).mfa_token, batch.codes[3])
        again = await runtime.sign_in.recovery_code((await held(runtime)).mfa_token, new_code)
        assert again.strategies == ("password", "recovery_code")
    finally:
        await runtime.aclose()


async def test_a_reset_under_the_required_policy_holds_the_sign_in_for_enrolment(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """mfa_policy=required: reset_mfa gives no one-factor session; it answers an MFA token
    held for enrolment (method totp_setup), as a first sign-in without a factor does."""
    runtime = Runtime(make_settings(mfa_policy="required", **LOOSE), clock=clock)
    try:
        await runtime.password.create_user(EMAIL, PASSWORD)
        await testing.enrol_totp(runtime, EMAIL)
        user = await runtime.find_user(EMAIL)
        assert user is not None
        assert runtime.recovery_codes is not None
        batch = await runtime.recovery_codes.generate(user)
        result = await runtime.sign_in.reset_mfa((await held(runtime)).mfa_token, batch.codes[0])
        assert isinstance(result, SecondFactorRequired)
        assert result.methods == ("totp_setup",)
        sessions = testing.rows(
            runtime,
            "SELECT jti FROM keystile_tokens WHERE purpose = 'access' AND revoked_at IS NULL",
        )
        assert sessions == []
    finally:
        await runtime.aclose()
