"""The OTP service from Python (no HTTP): atomic consumption, audit records, failed delivery."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import text

from keystile import testing
from keystile.clock import ManualClock
from keystile.errors import AuthenticationFailedError, TooManyAttemptsError
from keystile.runtime import Extensions, Runtime
from keystile.senders.base import Message, SendError
from keystile.settings import Settings
from tests.strategies.otp.helpers import parallel_wrong_guesses

pytestmark = pytest.mark.anyio
EMAIL = "alice@example.com"


class Capture:
    """A sender that keeps messages (or fails on demand), standing in for SMTP in-process."""

    def __init__(self, fail: bool = False) -> None:
        self.messages: list[Message] = []
        self.fail = fail

    async def send(self, message: Message) -> None:
        if self.fail:
            raise SendError("relay refused the message")
        self.messages.append(message)

    async def aclose(self) -> None:
        """Nothing to release."""


class Switch:
    """A sender that hands each message to ``target``, which a test may replace."""

    def __init__(self) -> None:
        self.target: Capture = Capture()

    async def send(self, message: Message) -> None:
        await self.target.send(message)

    async def aclose(self) -> None:
        """Nothing to release."""


@pytest.fixture
def switch() -> Switch:
    return Switch()


@pytest.fixture
async def runtime(
    make_settings: Callable[..., Settings], clock: ManualClock, switch: Switch
) -> AsyncIterator[Runtime]:
    runtime = Runtime(
        make_settings(otp_sign_in_rate="100/10m", database_pool_size=20),
        clock=clock,
        extensions=Extensions(sender=switch),
    )
    await runtime.create_user(EMAIL)
    yield runtime
    await runtime.aclose()


async def issue_code(runtime: Runtime, email: str = EMAIL) -> str:
    """Store a code exactly as ``request`` does, and return it."""
    return await testing.issue_code(runtime, email)


async def test_twenty_parallel_sign_ins_with_one_code_give_one_session(runtime: Runtime) -> None:
    """The consumption is one atomic statement: exactly one of twenty concurrent uses wins."""
    assert runtime.otp is not None
    code = await issue_code(runtime)
    outcomes: list[str] = []

    async def attempt() -> None:
        try:
            await runtime.sign_in.otp(EMAIL, code)
            outcomes.append("session")
        except AuthenticationFailedError:
            outcomes.append("refused")

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(attempt)
    assert outcomes.count("session") == 1
    assert outcomes.count("refused") == 19


async def test_parallel_wrong_guesses_cannot_pass_the_limit(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """Thirty concurrent guesses against a 5-per-10-minutes limit: exactly five are judged."""
    runtime = Runtime(make_settings(database_pool_size=20), clock=clock)
    assert runtime.otp is not None
    assert await parallel_wrong_guesses(runtime, EMAIL, 30) == {"judged": 5, "blocked": 25}


async def test_request_and_sign_in_from_python(runtime: Runtime, switch: Switch) -> None:
    """The programmatic API: request sends through the sender, sign_in returns a session."""
    assert runtime.otp is not None
    capture = Capture()
    switch.target = capture
    await runtime.otp.request(" Alice@Example.com ")
    await runtime.drain_deliveries()
    [message] = capture.messages
    assert message.to == EMAIL
    code = next(word for word in message.text.split() if len(word) == 6 and word.isupper())
    result = testing.signed_in(await runtime.sign_in.otp(EMAIL, code.lower()))
    assert result.user.email == EMAIL
    assert result.strategies == ("otp",)


async def audit_rows(runtime: Runtime) -> list[dict[str, Any]]:
    with testing.database(runtime).read() as conn:
        return [
            dict(row._mapping)
            for row in conn.execute(text("SELECT * FROM keystile_audit_events ORDER BY id"))
        ]


async def test_audit_records_every_attempt_and_never_the_code(runtime: Runtime) -> None:
    """Known request: success; unknown request: failure (client still sees ok); no code stored."""
    assert runtime.otp is not None
    await runtime.otp.request(EMAIL, client_address="203.0.113.9")
    await runtime.otp.request("nobody@example.com", client_address="203.0.113.9")
    code = await issue_code(runtime)
    with pytest.raises(AuthenticationFailedError):
        await runtime.sign_in.otp(EMAIL, "AAAAAA")
    await runtime.sign_in.otp(EMAIL, code)
    rows = await audit_rows(runtime)
    summary = [(r["strategy"], r["action"], bool(r["success"]), r["identity"]) for r in rows]
    assert summary == [
        ("otp", "request", True, EMAIL),
        ("otp", "request", False, "nobody@example.com"),
        ("otp", "sign_in", False, EMAIL),
        ("otp", "sign_in", True, EMAIL),
    ]
    user = await runtime.find_user(EMAIL)
    assert user is not None
    assert rows[0]["subject"] == rows[3]["subject"] == user.subject
    assert rows[1]["subject"] is None
    # Default privacy mode "hash": a stable keyed hash, never the address itself.
    assert rows[0]["client_address"] == rows[1]["client_address"]
    assert rows[0]["client_address"] != "203.0.113.9"
    dump = repr(rows)
    assert code not in dump
    assert code.lower() not in dump
    with testing.database(runtime).read() as conn:
        tokens = repr(conn.execute(text("SELECT * FROM keystile_tokens")).all())
    assert code not in tokens


@pytest.mark.parametrize(
    ("mode", "stored"),
    [("none", "203.0.113.9"), ("truncate", "203.0.113.0/24"), ("exclude", None)],
)
async def test_client_address_privacy_modes(
    make_settings: Callable[..., Settings], clock: ManualClock, mode: str, stored: str | None
) -> None:
    """none keeps, truncate keeps the /24, exclude keeps nothing."""
    runtime = Runtime(make_settings(audit_client_address=mode), clock=clock)
    try:
        assert runtime.otp is not None
        await runtime.otp.request("nobody@example.com", client_address="203.0.113.9")
        [row] = await audit_rows(runtime)
        assert row["client_address"] == stored
    finally:
        await runtime.aclose()


async def test_a_failed_send_is_logged_and_audited_and_the_answer_is_unchanged(
    runtime: Runtime, caplog: pytest.LogCaptureFixture, switch: Switch
) -> None:
    """The relay refuses: request still returns normally; a 'deliver' failure is recorded."""
    assert runtime.otp is not None
    switch.target = Capture(fail=True)
    with caplog.at_level(logging.WARNING, logger="keystile.senders"):
        await runtime.otp.request(EMAIL)  # returns normally: the caller answers ok
        await runtime.drain_deliveries()
    rows = await audit_rows(runtime)
    assert [(r["action"], bool(r["success"])) for r in rows] == [
        ("request", True),
        ("deliver", False),
    ]
    assert "delivery to a recipient failed: SendError" in caplog.text


async def test_parallel_first_sign_ins_of_a_reusable_code_register_one_user(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """Registration with a reusable code: twenty concurrent first sign-ins, one new user, no error.

    On PostgreSQL all twenty transactions can miss the user and insert it; the
    losers of that race must sign in to the winner's account, not fail.
    """
    runtime = Runtime(
        make_settings(
            otp_sign_in_rate="100/10m",
            database_pool_size=20,
            otp_registration_enabled=True,
            otp_single_use=False,
        ),
        clock=clock,
    )
    try:
        assert runtime.otp is not None
        code = await issue_code(runtime, "new@example.com")
        subjects: list[str] = []

        async def attempt() -> None:
            session = testing.signed_in(await runtime.sign_in.otp("new@example.com", code))
            subjects.append(session.user.subject)

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(attempt)
        users = await runtime.list_users()
        assert [user.email for user in users] == ["new@example.com"]
        assert subjects == [users[0].subject] * 20
    finally:
        await runtime.aclose()


@pytest.mark.parametrize("backend", ["database", "memory"])
async def test_a_blocked_attempt_is_audited_and_verifies_nothing(
    make_settings: Callable[..., Settings], clock: ManualClock, backend: str
) -> None:
    """Past the limit even the right code is refused, is audited as blocked, and stays usable.

    With the database backend the limit is counted inside the sign-in's own
    transaction; the memory backend counts it before. Both must behave alike.
    """
    runtime = Runtime(
        make_settings(otp_sign_in_rate="2/1m", rate_limit_backend=backend), clock=clock
    )
    try:
        assert runtime.otp is not None
        await runtime.create_user(EMAIL)
        code = await issue_code(runtime)
        for _ in range(2):
            with pytest.raises(AuthenticationFailedError):
                await runtime.sign_in.otp(EMAIL, "AAAAAA")
        with pytest.raises(TooManyAttemptsError) as blocked:
            await runtime.sign_in.otp(EMAIL, code)
        assert 1 <= blocked.value.retry_after <= 60
        rows = await audit_rows(runtime)
        assert [(r["action"], bool(r["success"])) for r in rows] == [
            ("sign_in", False),
            ("sign_in", False),
            ("sign_in_blocked", False),
        ]
        with testing.database(runtime).read() as conn:
            failed = conn.execute(
                text("SELECT failed_attempts FROM keystile_tokens WHERE purpose = 'otp'")
            ).scalar_one()
        assert failed == 2  # the blocked attempt was not checked against the code
        clock.advance(timedelta(seconds=61))
        session = testing.signed_in(await runtime.sign_in.otp(EMAIL, code))
        assert session.user.email == EMAIL
    finally:
        await runtime.aclose()


@pytest.mark.parametrize("backend", ["database", "memory"])
async def test_a_blocked_request_stores_and_sends_nothing(
    make_settings: Callable[..., Settings], clock: ManualClock, backend: str
) -> None:
    """Past the request limit no code replaces the last one, nothing is sent, and it is audited."""
    capture = Capture()
    runtime = Runtime(
        make_settings(otp_request_rate="2/15m", rate_limit_backend=backend),
        clock=clock,
        extensions=Extensions(sender=capture),
    )
    try:
        assert runtime.otp is not None
        await runtime.create_user(EMAIL)
        for _ in range(2):
            await runtime.otp.request(EMAIL)
        with pytest.raises(TooManyAttemptsError):
            await runtime.otp.request(EMAIL)
        await runtime.drain_deliveries()
        assert len(capture.messages) == 2
        rows = await audit_rows(runtime)
        assert [(r["action"], bool(r["success"])) for r in rows] == [
            ("request", True),
            ("request", True),
            ("request_blocked", False),
        ]
        with testing.database(runtime).read() as conn:
            live = conn.execute(
                text(
                    "SELECT count(*) FROM keystile_tokens"
                    " WHERE purpose = 'otp' AND revoked_at IS NULL"
                )
            ).scalar_one()
            stored = conn.execute(
                text("SELECT count(*) FROM keystile_tokens WHERE purpose = 'otp'")
            ).scalar_one()
        assert (stored, live) == (2, 1)  # the blocked request stored no third code
    finally:
        await runtime.aclose()
