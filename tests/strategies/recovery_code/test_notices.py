"""The recovery-code notices when delivery fails: the sign-in stands, the failure is audited.

The sender is real SMTP pointed at a loopback port where nothing listens, so
every delivery is refused by the network, not by a stand-in.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from keystile import testing
from keystile.clock import ManualClock
from keystile.flows.sign_in import SecondFactorRequired
from keystile.runtime import Runtime
from keystile.settings import Settings
from tests.servers import free_port
from tests.strategies.recovery_code.helpers import PASSWORD

pytestmark = pytest.mark.anyio
EMAIL = "alice@example.com"
NOTIFY_FAILURES = (
    "SELECT subject FROM keystile_audit_events WHERE strategy = 'recovery_code'"
    " AND action = 'notify' AND success = false"
)


async def mfa_token(runtime: Runtime) -> str:
    challenge = await runtime.sign_in.password(EMAIL, PASSWORD)
    assert isinstance(challenge, SecondFactorRequired)
    return challenge.mfa_token


async def test_a_failed_notice_is_audited_and_the_sign_in_stands(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """A code used, then a reset, with the mail server down: both sign-ins succeed, and each
    failed notice is one recovery_code/notify failure naming the user."""
    settings = make_settings(
        sender="smtp", smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none"
    )
    runtime = Runtime(settings, clock=clock)
    try:
        user = await runtime.password.create_user(EMAIL, PASSWORD)
        await testing.enrol_totp(runtime, EMAIL)
        assert runtime.recovery_codes is not None
        codes = (await runtime.recovery_codes.generate(user)).codes
        used = await runtime.sign_in.recovery_code(await mfa_token(runtime), codes[0])
        reset = testing.signed_in(
            await runtime.sign_in.reset_mfa(await mfa_token(runtime), codes[1])
        )
        assert used.token
        assert reset.token
        await runtime.drain_deliveries(10)  # a failure is recorded before its job is done
        failures = testing.rows(runtime, NOTIFY_FAILURES)
        assert [row["subject"] for row in failures] == [user.subject, user.subject]
    finally:
        await runtime.aclose()
