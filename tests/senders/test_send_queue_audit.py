"""A code request whose message finds the send queue full: audited as a failed delivery.

Runs the real OTP service on a real database; only the sender is a stand-in
that holds every delivery until released (a mail server that hangs).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from keystile import testing
from keystile.clock import ManualClock
from keystile.runtime import Extensions, Runtime
from keystile.senders import Message
from keystile.settings import Settings

pytestmark = pytest.mark.anyio

USERS = ["first@example.com", "second@example.com", "third@example.com"]


class HungRelay:
    """Accepts each message only once ``release`` is called."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.delivered: list[str] = []
        self._released = asyncio.Event()
        self.busy = asyncio.Event()

    async def send(self, message: Message) -> None:
        self.started.append(message.to)
        self.busy.set()
        await self._released.wait()
        self.delivered.append(message.to)

    async def aclose(self) -> None:
        """Nothing to release."""

    def release(self) -> None:
        self._released.set()


def audit_rows(runtime: Runtime) -> list[dict[str, Any]]:
    with testing.database(runtime).read() as conn:
        rows = conn.execute(text("SELECT * FROM keystile_audit_events ORDER BY id"))
        return [dict(row._mapping) for row in rows]


async def test_a_request_beyond_the_queue_answers_at_once_and_audits_a_failed_delivery(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """One worker busy, one message queued: the third request still returns at once.

    Its message is not sent; the audit log holds a ``deliver`` failure for that
    identity, exactly as when the mail server refuses a message.
    """
    relay = HungRelay()
    runtime = Runtime(
        make_settings(send_queue_size=1, send_workers=1),
        clock=clock,
        extensions=Extensions(sender=relay),
    )
    try:
        otp = runtime.otp
        assert otp is not None
        for email in USERS:
            await runtime.create_user(email)
        await otp.request(USERS[0])
        async with asyncio.timeout(5):
            await relay.busy.wait()  # the one worker now holds the first message
        await otp.request(USERS[1])
        started = time.perf_counter()
        await otp.request(USERS[2])
        assert time.perf_counter() - started < 2  # did not wait for the hung relay
        relay.release()
        await runtime.drain_deliveries()
        assert relay.delivered == USERS[:2]
        rows = [(r["action"], bool(r["success"]), r["identity"]) for r in audit_rows(runtime)]
        assert rows == [
            ("request", True, USERS[0]),
            ("request", True, USERS[1]),
            ("request", True, USERS[2]),
            ("deliver", False, USERS[2]),
        ]
    finally:
        await runtime.aclose()
