"""The sign-in flow: one transaction per attempt, and what a verified factor earns."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import anyio
import pytest

from keystile import testing
from keystile.clock import ManualClock
from keystile.errors import AuthenticationFailedError, TooManyAttemptsError
from keystile.flows.sign_in import SessionGrant, decide
from keystile.runtime import Runtime
from keystile.settings import Settings
from keystile.store.users import User
from keystile.strategies.factors import VerifiedFactor

pytestmark = pytest.mark.anyio
EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


rows = testing.rows


@pytest.fixture
async def runtime(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> AsyncIterator[Runtime]:
    runtime = Runtime(make_settings(otp_sign_in_rate="100/10m", database_pool_size=20), clock=clock)
    yield runtime
    await runtime.aclose()


async def issue_code(runtime: Runtime, email: str = EMAIL) -> str:
    return await testing.issue_code(runtime, email)


def test_a_verified_first_factor_earns_a_session_with_that_factor() -> None:
    """decide(): today every verified first factor starts a session naming that factor."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    user = User(id=uuid.uuid4(), email=EMAIL, created_at=now, updated_at=now)
    verified = VerifiedFactor(user=user, strategy="otp", amr="otp", at=now)
    assert decide(verified) == SessionGrant(strategies=("otp",), amr=("otp",))


async def test_a_code_sign_in_writes_session_and_audit_together(runtime: Runtime) -> None:
    """A hit stores one session row and one success record; the replay only a failure."""
    user = await runtime.create_user(EMAIL)
    code = await issue_code(runtime)
    result = testing.signed_in(await runtime.sign_in.otp(EMAIL, code))
    assert result.user == user
    assert result.claims.amr == ("otp",)
    with pytest.raises(AuthenticationFailedError):
        await runtime.sign_in.otp(EMAIL, code)
    sessions = rows(runtime, "SELECT jti, subject FROM keystile_tokens WHERE purpose = 'access'")
    assert sessions == [{"jti": result.claims.jti, "subject": user.subject}]
    audit = rows(runtime, "SELECT success, subject FROM keystile_audit_events ORDER BY id")
    assert [(bool(r["success"]), r["subject"]) for r in audit] == [
        (True, user.subject),
        (False, None),
    ]


async def test_parallel_sign_ins_with_one_code_store_one_session(runtime: Runtime) -> None:
    """Twenty concurrent sign-ins with one code: one session row, nineteen failures."""
    await runtime.create_user(EMAIL)
    code = await issue_code(runtime)
    outcomes: list[bool] = []

    async def attempt() -> None:
        try:
            await runtime.sign_in.otp(EMAIL, code)
            outcomes.append(True)
        except AuthenticationFailedError:
            outcomes.append(False)

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(attempt)
    assert outcomes.count(True) == 1
    assert len(rows(runtime, "SELECT jti FROM keystile_tokens WHERE purpose = 'access'")) == 1


async def test_registration_creates_the_user_only_on_a_correct_code(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """Registration on: a miss creates nothing; the hit creates a user with no password."""
    runtime = Runtime(make_settings(otp_registration_enabled=True), clock=clock)
    try:
        code = await issue_code(runtime)
        with pytest.raises(AuthenticationFailedError):
            await runtime.sign_in.otp(EMAIL, "AAAAAA" if code != "AAAAAA" else "BBBBBB")
        assert await runtime.find_user(EMAIL) is None
        result = testing.signed_in(await runtime.sign_in.otp(EMAIL, code))
        assert result.user.password_hash is None
        assert await runtime.find_user(EMAIL) == result.user
    finally:
        await runtime.aclose()


async def test_a_password_sign_in_is_one_transaction_of_audit_and_session(
    runtime: Runtime,
) -> None:
    """Password: success stores the session row with its audit record; a failure only audits."""
    user = await runtime.password.create_user(EMAIL, PASSWORD)
    result = testing.signed_in(await runtime.sign_in.password(EMAIL, PASSWORD))
    assert result.user.id == user.id
    assert result.strategies == ("password",)
    with pytest.raises(AuthenticationFailedError):
        await runtime.sign_in.password(EMAIL, "wrong password!")
    assert len(rows(runtime, "SELECT jti FROM keystile_tokens WHERE purpose = 'access'")) == 1
    audit = rows(runtime, "SELECT action, success FROM keystile_audit_events ORDER BY id")
    assert [(r["action"], bool(r["success"])) for r in audit] == [
        ("sign_in", True),
        ("sign_in", False),
    ]


async def test_a_blocked_attempt_verifies_nothing_and_is_audited_once(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """Past the limit, the right code is refused, stays live, and one blocked record is kept."""
    runtime = Runtime(make_settings(otp_sign_in_rate="1/10m"), clock=clock)
    try:
        await runtime.create_user(EMAIL)
        code = await issue_code(runtime)
        with pytest.raises(AuthenticationFailedError):
            await runtime.sign_in.otp(EMAIL, "AAAAAA" if code != "AAAAAA" else "BBBBBB")
        with pytest.raises(TooManyAttemptsError):
            await runtime.sign_in.otp(EMAIL, code)
        [live] = rows(runtime, "SELECT revoked_at FROM keystile_tokens WHERE purpose = 'otp'")
        assert live["revoked_at"] is None
        audit = rows(runtime, "SELECT action FROM keystile_audit_events ORDER BY id")
        assert [r["action"] for r in audit] == ["sign_in", "sign_in_blocked"]
    finally:
        await runtime.aclose()
