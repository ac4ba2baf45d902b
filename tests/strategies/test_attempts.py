"""The attempt gate: where a refusal is decided, audited and raised, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from keystile.crypto.keyring import KeyRing
from keystile.errors import TooManyAttemptsError
from keystile.limits.database import DatabaseRateLimiter
from keystile.limits.memory import MemoryRateLimiter
from keystile.limits.protection import (
    Attempt,
    BruteForceGuard,
    HookProtection,
    RateLimitProtection,
)
from keystile.limits.rate import Rate
from keystile.store.audit import AuditStore
from keystile.store.database import Database, DriverConnection
from keystile.strategies.attempts import Admission, AttemptGate
from keystile.strategies.audit_trail import AuditTrail

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RATE = Rate(limit=2, window=timedelta(minutes=10))
EMAIL = "alice@example.com"


def trail(db: Database) -> AuditTrail:
    return AuditTrail(AuditStore(db), privacy="hash", key=KeyRing(["h" * 40]).current)


def audit_rows(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        query = "SELECT action, success, identity, client_address FROM keystile_audit_events"
        return [dict(row._mapping) for row in conn.execute(text(query))]


async def count(db: Database, admission: Admission) -> int | None:
    def work(conn: DriverConnection) -> int | None:
        return admission.count_in(conn)

    return await db.transact(work)


def gate(db: Database, *protections: Any) -> AttemptGate:
    return AttemptGate(strategy="otp", guard=BruteForceGuard(protections), audit=trail(db), db=db)


async def test_a_database_limit_counts_inside_the_transaction(db: Database) -> None:
    """The database limiter on the gate's database is not hit by enter(); count_in hits it,
    and the third attempt is refused there and recorded as blocked in the same transaction."""
    database_limit = RateLimitProtection(DatabaseRateLimiter(db), {"sign_in": RATE})
    the_gate = gate(db, database_limit)
    waits = []
    for _ in range(3):
        admission = await the_gate.enter("sign_in", EMAIL, "203.0.113.9", now=NOW)
        assert admission.open  # nothing was counted outside the transaction
        waits.append(await count(db, admission))
    assert waits[:2] == [None, None]
    assert waits[2] == 600
    [blocked] = audit_rows(db)
    assert blocked["action"] == "sign_in_blocked"
    assert not blocked["success"]
    assert blocked["identity"] == EMAIL
    assert blocked["client_address"] != "203.0.113.9"  # kept under the privacy mode (hash)


async def test_a_refusal_outside_the_database_is_audited_by_count_in(db: Database) -> None:
    """A memory limit or a hook counts in enter(); a refusal there is recorded (once) by the
    transaction's count_in, which then counts nothing else."""
    database_limiter = DatabaseRateLimiter(db)
    the_gate = gate(
        db,
        HookProtection(lambda attempt: False, retry_after=42),
        RateLimitProtection(database_limiter, {"sign_in": RATE}),
    )
    admission = await the_gate.enter("sign_in", EMAIL, None, now=NOW)
    assert admission.refused == 42
    assert await count(db, admission) == 42
    assert [row["action"] for row in audit_rows(db)] == ["sign_in_blocked"]
    with db.read() as conn:  # the database limit was not hit for a refused attempt
        hits = conn.execute(text("SELECT count(*) FROM keystile_rate_limit_hits")).scalar_one()
    assert hits == 0


async def test_peek_refuses_without_recording(db: Database) -> None:
    """peek(): an identity at its limit is refused before costly work, and nothing is written."""
    database_limit = RateLimitProtection(DatabaseRateLimiter(db), {"sign_in": RATE})
    the_gate = gate(db, database_limit)
    for _ in range(2):
        assert await count(db, await the_gate.enter("sign_in", EMAIL, None, now=NOW)) is None
    peeked = await the_gate.peek(await the_gate.enter("sign_in", EMAIL, None, now=NOW))
    assert peeked.refused == 600
    assert audit_rows(db) == []  # a peek records nothing; count_in will


def test_settle_raises_the_refusal_and_nothing_else() -> None:
    """settle(None) returns; settle(seconds) raises TooManyAttemptsError with Retry-After."""
    Admission.settle(None)
    with pytest.raises(TooManyAttemptsError) as caught:
        Admission.settle(17)
    assert caught.value.retry_after == 17


async def test_protections_of_other_actions_are_not_run(db: Database) -> None:
    """A limit wired to request only counts nothing for sign_in."""
    memory = MemoryRateLimiter()
    the_gate = gate(db, RateLimitProtection(memory, {"request": Rate(1, timedelta(minutes=1))}))
    for _ in range(3):
        admission = await the_gate.enter("sign_in", EMAIL, None, now=NOW)
        assert admission.open
        assert await count(db, admission) is None
    assert memory.key_count() == 0


def test_the_blocked_record_is_not_a_failure_of_the_action(db: Database) -> None:
    """blocked_event(): '<action>_blocked', unsuccessful, so a lockout does not extend itself."""
    attempt = Attempt(
        strategy="otp", action="sign_in", identity=EMAIL, client_address=None, now=NOW
    )
    event = trail(db).blocked_event(attempt)
    assert (event.action, event.success, event.identity) == ("sign_in_blocked", False, EMAIL)
