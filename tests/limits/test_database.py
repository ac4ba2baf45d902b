"""What only the database limiter promises: purging, its lock ids, failing closed."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from keystile.clock import ManualClock
from keystile.errors import UnavailableError
from keystile.limits import DatabaseRateLimiter, Decision, Rate
from keystile.limits.database import advisory_lock_id
from keystile.store.database import Database
from tests.servers import free_port

RATE = Rate(limit=3, window=timedelta(minutes=1))


def test_purge_drops_old_hits_of_every_key(db: Database, clock: ManualClock) -> None:
    """``purge`` removes hits at or before its horizon, across keys, and keeps the rest."""
    limiter = DatabaseRateLimiter(db)
    start = clock.now()

    async def scenario() -> tuple[int, Decision, Decision]:
        await limiter.hit("alice", RATE, now=start)
        await limiter.hit("bob", RATE, now=start + timedelta(seconds=10))
        await limiter.hit("bob", RATE, now=start + timedelta(seconds=30))
        purged = await limiter.purge(before=start + timedelta(seconds=10))
        later = start + timedelta(seconds=40)
        return (
            purged,
            await limiter.hit("alice", RATE, now=later),
            await limiter.hit("bob", RATE, now=later),
        )

    purged, alice, bob = anyio.run(scenario)
    assert purged == 2
    assert alice == Decision(allowed=True, retry_after=0, remaining=2)
    assert bob == Decision(allowed=True, retry_after=0, remaining=1)


def test_advisory_lock_ids_are_stable() -> None:
    """Lock ids are pinned: processes of two Keystile versions must lock the same key alike."""
    assert advisory_lock_id("otp:sign_in:alice@example.com") == -2429941958867842729
    assert advisory_lock_id("") == -5988084253747559600


def test_unreachable_postgresql_fails_closed(clock: ManualClock) -> None:
    """A PostgreSQL server that refuses connections is UnavailableError, never an allowed hit."""
    db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/keystile")
    limiter = DatabaseRateLimiter(db)
    try:
        with pytest.raises(UnavailableError) as raised:
            anyio.run(lambda: limiter.hit("alice", RATE, now=clock.now()))
    finally:
        db.dispose()
    assert raised.value.code == "unavailable"


def test_locked_sqlite_fails_closed(
    tmp_path: Path, sqlite_template: Path, clock: ManualClock
) -> None:
    """A SQLite file held by another writer past the busy timeout is UnavailableError."""
    path = tmp_path / "keystile.db"
    shutil.copyfile(sqlite_template, path)
    db = Database(f"sqlite:///{path}", busy_timeout_seconds=0.2)
    limiter = DatabaseRateLimiter(db)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(UnavailableError):
            anyio.run(lambda: limiter.hit("alice", RATE, now=clock.now()))
        holder.execute("ROLLBACK")
        # Nothing was recorded while locked out.
        after = anyio.run(lambda: limiter.hit("alice", RATE, now=clock.now()))
    finally:
        holder.close()
        db.dispose()
    assert after == Decision(allowed=True, retry_after=0, remaining=2)
