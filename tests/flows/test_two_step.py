"""The two-step sign-in and step-up with TOTP, through the flows, on SQLite and PostgreSQL.

Codes come from ``oathtool``, an independent authenticator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import anyio
import pytest

from keystile import testing
from keystile.clock import ManualClock
from keystile.errors import AuthenticationFailedError, TooManyAttemptsError
from keystile.flows.sessions import Authenticated
from keystile.flows.sign_in import SecondFactorRequired
from keystile.runtime import Runtime
from keystile.settings import Settings
from keystile.store.database import Database
from keystile.strategies.totp.rotation import rotate_secrets
from tests.strategies.totp.helpers import oathtool

pytestmark = pytest.mark.anyio
EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
async def runtime(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> AsyncIterator[Runtime]:
    runtime = Runtime(
        make_settings(database_pool_size=20, totp_rate="100/5m", password_sign_in_rate="1000/10m"),
        clock=clock,
    )
    await runtime.password.create_user(EMAIL, PASSWORD)
    yield runtime
    await runtime.aclose()


async def first_factor(runtime: Runtime) -> SecondFactorRequired:
    result = await runtime.sign_in.password(EMAIL, PASSWORD)
    assert isinstance(result, SecondFactorRequired)
    return result


async def test_without_a_second_factor_a_password_starts_a_session(runtime: Runtime) -> None:
    """Optional policy, no authenticator: the first factor is enough."""
    result = await runtime.sign_in.password(EMAIL, PASSWORD)
    assert isinstance(result, Authenticated)
    assert result.claims.amr == ("pwd",)


async def test_a_user_with_totp_gets_an_mfa_token_and_no_session(runtime: Runtime) -> None:
    """Password for a user with TOTP: an opaque MFA token, methods ["totp"], no session row."""
    await testing.enrol_totp(runtime, EMAIL)
    challenge = await first_factor(runtime)
    assert challenge.methods == ("totp",)
    assert challenge.expires_in == 300
    assert challenge.mfa_token.count(".") == 0  # opaque, not a JWT
    sessions = testing.rows(runtime, "SELECT jti FROM keystile_tokens WHERE purpose = 'access'")
    assert sessions == []
    stored = testing.rows(runtime, "SELECT jti FROM keystile_tokens WHERE purpose = 'mfa'")
    assert [row["jti"] for row in stored] != [challenge.mfa_token]  # only its keyed hash


async def test_the_second_factor_finishes_the_sign_in_with_both_factors(
    runtime: Runtime, clock: ManualClock
) -> None:
    """MFA token + oathtool code: a session whose amr and strategies hold both factors, in order."""
    secret = await testing.enrol_totp(runtime, EMAIL)
    challenge = await first_factor(runtime)
    clock.advance(timedelta(seconds=20))
    result = await runtime.sign_in.totp(challenge.mfa_token, oathtool(secret, clock.now()))
    assert result.strategies == ("password", "totp")
    assert result.claims.amr == ("pwd", "otp", "mfa")
    assert result.claims.auth_time == clock.now().replace(microsecond=0)
    session = await runtime.sessions.verify(result.token)
    assert session.user.email == EMAIL
    with pytest.raises(AuthenticationFailedError):  # the MFA token is single use
        await runtime.sign_in.totp(challenge.mfa_token, oathtool(secret, clock.now()))


async def test_a_code_is_accepted_once_and_older_steps_never(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Replay of an accepted code fails on a fresh MFA token; a code two steps old fails."""
    secret = await testing.enrol_totp(runtime, EMAIL)
    code = oathtool(secret, clock.now())
    await runtime.sign_in.totp((await first_factor(runtime)).mfa_token, code)
    with pytest.raises(AuthenticationFailedError):
        await runtime.sign_in.totp((await first_factor(runtime)).mfa_token, code)
    clock.advance(timedelta(seconds=90))
    stale = oathtool(secret, clock.now() - timedelta(seconds=60))
    with pytest.raises(AuthenticationFailedError):
        await runtime.sign_in.totp((await first_factor(runtime)).mfa_token, stale)
    fresh = oathtool(secret, clock.now())
    assert (await runtime.sign_in.totp((await first_factor(runtime)).mfa_token, fresh)).token


async def test_twenty_parallel_verifies_with_one_code_give_one_session(
    runtime: Runtime,
) -> None:
    """One code, twenty MFA tokens, all at once: exactly one succeeds (atomic step record)."""
    secret = await testing.enrol_totp(runtime, EMAIL)
    challenges = [await first_factor(runtime) for _ in range(20)]
    code = oathtool(secret, runtime.clock.now())
    outcomes: list[bool] = []

    async def verify(token: str) -> None:
        try:
            await runtime.sign_in.totp(token, code)
            outcomes.append(True)
        except AuthenticationFailedError:
            outcomes.append(False)

    async with anyio.create_task_group() as group:
        for challenge in challenges:
            group.start_soon(verify, challenge.mfa_token)
    assert outcomes.count(True) == 1
    sessions = testing.rows(runtime, "SELECT jti FROM keystile_tokens WHERE purpose = 'access'")
    assert len(sessions) == 1


async def test_an_mfa_token_is_burned_after_five_wrong_codes(runtime: Runtime) -> None:
    """Five wrong codes burn the token: the right code then fails on it."""
    secret = await testing.enrol_totp(runtime, EMAIL)
    challenge = await first_factor(runtime)
    for _ in range(5):
        with pytest.raises(AuthenticationFailedError):
            await runtime.sign_in.totp(challenge.mfa_token, "000000")
    with pytest.raises(AuthenticationFailedError):
        await runtime.sign_in.totp(challenge.mfa_token, oathtool(secret, runtime.clock.now()))


async def test_parallel_wrong_codes_cannot_pass_the_per_user_limit(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """Thirty wrong codes at once across fresh MFA tokens of one user: five judged (5/5m)."""
    runtime = Runtime(
        make_settings(database_pool_size=20, password_sign_in_rate="1000/10m"), clock=clock
    )
    try:
        await runtime.password.create_user(EMAIL, PASSWORD)
        await testing.enrol_totp(runtime, EMAIL)
        tokens = [(await first_factor(runtime)).mfa_token for _ in range(30)]
        outcomes: list[str] = []

        async def guess(token: str) -> None:
            try:
                await runtime.sign_in.totp(token, "000000")
            except AuthenticationFailedError:
                outcomes.append("judged")
            except TooManyAttemptsError:
                outcomes.append("blocked")

        async with anyio.create_task_group() as group:
            for token in tokens:
                group.start_soon(guess, token)
        assert outcomes.count("judged") == 5
        assert outcomes.count("blocked") == 25
        failures = testing.rows(
            runtime,
            "SELECT id FROM keystile_audit_events WHERE strategy = 'totp' AND success = false"
            " AND action = 'verify'",
        )
        assert len(failures) == 5
    finally:
        await runtime.aclose()


async def test_step_up_gives_a_fresh_token_and_revokes_the_old(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Bearer + code: a new token whose auth_time is now and whose amr gains otp and mfa."""
    secret = await testing.enrol_totp(runtime, EMAIL)
    challenge = await first_factor(runtime)
    signed_in = await runtime.sign_in.totp(challenge.mfa_token, oathtool(secret, clock.now()))
    session = await runtime.sessions.verify(signed_in.token)
    clock.advance(timedelta(minutes=10))
    stepped = await runtime.sign_in.step_up_totp(session, oathtool(secret, clock.now()))
    assert stepped.claims.auth_time == clock.now().replace(microsecond=0)
    assert stepped.strategies == ("password", "totp")
    assert stepped.claims.amr == ("pwd", "otp", "mfa")
    with pytest.raises(Exception, match="bearer"):
        await runtime.sessions.verify(signed_in.token)
    assert (await runtime.sessions.verify(stepped.token)).user.email == EMAIL


async def test_required_policy_holds_a_user_without_second_factor_for_setup(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """mfa_policy=required: no authenticator yet means method totp_setup, never a session."""
    runtime = Runtime(make_settings(mfa_policy="required"), clock=clock)
    try:
        await runtime.password.create_user(EMAIL, PASSWORD)
        challenge = await first_factor(runtime)
        assert challenge.methods == ("totp_setup",)
        with pytest.raises(AuthenticationFailedError):  # not a TOTP challenge
            await runtime.sign_in.totp(challenge.mfa_token, "000000")
    finally:
        await runtime.aclose()


async def test_a_code_used_for_the_second_factor_is_refused_for_step_up(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Replay is refused on every path: the code that finished the sign-in cannot step up."""
    secret = await testing.enrol_totp(runtime, EMAIL)
    code = oathtool(secret, clock.now())
    signed_in = await runtime.sign_in.totp((await first_factor(runtime)).mfa_token, code)
    session = await runtime.sessions.verify(signed_in.token)
    with pytest.raises(AuthenticationFailedError):
        await runtime.sign_in.step_up_totp(session, code)


async def test_keys_rotate_leaves_every_user_able_to_sign_in(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """Secrets resealed under a new encryption key (the old one then removed): TOTP still works."""
    old_key, new_key = "e" * 40, "n" * 40
    before = Runtime(make_settings(encryption_keys=(old_key,)), clock=clock)
    try:
        await before.password.create_user(EMAIL, PASSWORD)
        secret = await testing.enrol_totp(before, EMAIL)
    finally:
        await before.aclose()
    both = make_settings(encryption_keys=(new_key, old_key))
    db = Database(both.database_url)
    try:
        report = rotate_secrets(db, both.ring("encryption_keys"))
    finally:
        db.dispose()
    assert report.moved == 1
    after = Runtime(make_settings(encryption_keys=(new_key,)), clock=clock)
    try:
        challenge = await first_factor(after)
        result = await after.sign_in.totp(challenge.mfa_token, oathtool(secret, clock.now()))
        assert result.strategies == ("password", "totp")
    finally:
        await after.aclose()
