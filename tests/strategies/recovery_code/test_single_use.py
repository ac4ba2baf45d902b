"""Single use under concurrency: one code, fifty parallel uses, exactly one success.

In-process through ``runtime.sign_in.recovery_code``, on SQLite and PostgreSQL:
fifty MFA tokens of one user all try the same code at once. The code is
consumed by one conditional UPDATE checked by its row count, so one attempt
gets a session and forty-nine get ``authentication_failed``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import pytest

from keystile import testing
from keystile.clock import ManualClock
from keystile.errors import AuthenticationFailedError
from keystile.flows.sign_in import SecondFactorRequired
from keystile.runtime import Runtime
from keystile.settings import Settings
from tests.strategies.recovery_code.helpers import PASSWORD

pytestmark = pytest.mark.anyio
EMAIL = "alice@example.com"
PARALLEL = 50


@pytest.fixture
async def runtime(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> AsyncIterator[Runtime]:
    runtime = Runtime(
        make_settings(
            database_pool_size=20,
            password_sign_in_rate="1000/10m",
            recovery_code_rate="1000/15m",
        ),
        clock=clock,
    )
    await runtime.password.create_user(EMAIL, PASSWORD)
    await testing.enrol_totp(runtime, EMAIL)
    yield runtime
    await runtime.aclose()


async def test_fifty_parallel_uses_of_one_code_give_exactly_one_session(runtime: Runtime) -> None:
    """50 MFA tokens, one code, all at once: one success, 49 failures, one session row, one
    used code, and the audit log holds one success and 49 failures."""
    user = await runtime.find_user(EMAIL)
    assert user is not None
    assert runtime.recovery_codes is not None
    code = (await runtime.recovery_codes.generate(user)).codes[0]
    tokens: list[str] = []
    for _ in range(PARALLEL):
        challenge = await runtime.sign_in.password(EMAIL, PASSWORD)
        assert isinstance(challenge, SecondFactorRequired)
        tokens.append(challenge.mfa_token)
    outcomes: list[bool] = []

    async def use(token: str) -> None:
        try:
            await runtime.sign_in.recovery_code(token, code)
            outcomes.append(True)
        except AuthenticationFailedError:
            outcomes.append(False)

    async with anyio.create_task_group() as group:
        for token in tokens:
            group.start_soon(use, token)
    assert outcomes.count(True) == 1
    assert outcomes.count(False) == PARALLEL - 1
    sessions = testing.rows(runtime, "SELECT jti FROM keystile_tokens WHERE purpose = 'access'")
    assert len(sessions) == 1
    used = testing.rows(runtime, "SELECT id FROM keystile_recovery_codes WHERE used_at IS NOT NULL")
    assert len(used) == 1
    audited = testing.rows(
        runtime,
        "SELECT success FROM keystile_audit_events WHERE strategy = 'recovery_code'"
        " AND action = 'verify'",
    )
    assert sorted(bool(row["success"]) for row in audited) == [False] * (PARALLEL - 1) + [True]
