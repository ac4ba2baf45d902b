"""Short codes in the token table: replaced per identity, consumed once, burned by misses.

The repository functions of :mod:`keystile.store.tokens`, each run in a unit of
work (``Database.transact``) as the services and flows run them, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import text

from keystile.store import tokens
from keystile.store.database import Database, DriverConnection
from keystile.store.locks import lock_identity

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)
EMAIL = "alice@example.com"


def _replace(conn: DriverConnection, code_id: str, email: str) -> None:
    lock_identity(conn, email)
    tokens.replace_code(conn, jti=code_id, purpose="otp", subject=email, now=NOW, expires_at=LATER)


async def store_code(db: Database, code_id: str, *, email: str = EMAIL) -> None:
    await db.transact(functools.partial(_replace, code_id=code_id, email=email))


async def redeem(
    db: Database, code_ids: list[str], *, now: datetime = NOW, single_use: bool = True
) -> bool:
    def work(conn: DriverConnection) -> bool:
        return tokens.consume_code(
            conn,
            code_ids,
            purpose="otp",
            subject=EMAIL,
            now=now,
            max_failures=5,
            single_use=single_use,
        )

    return await db.transact(work)


def rows(db: Database, sql: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(text(sql))]


async def test_a_new_code_revokes_the_outstanding_one(db: Database) -> None:
    """Only the newest code of an identity is live."""
    await store_code(db, "old")
    await store_code(db, "new")
    assert await redeem(db, ["old"]) is False
    assert await redeem(db, ["new"]) is True


async def test_a_code_is_consumed_once_under_any_of_its_ids(db: Database) -> None:
    """A hit under any candidate id (one per hashing key) uses the code up; a replay misses."""
    await store_code(db, "code")
    assert await redeem(db, ["other-key-id", "code"]) is True
    assert await redeem(db, ["code"]) is False


async def test_misses_burn_the_code_at_the_limit(db: Database) -> None:
    """Four misses leave the code usable; the fifth burns it."""
    await store_code(db, "code")
    for _ in range(4):
        assert await redeem(db, ["wrong"]) is False
    assert rows(db, "SELECT failed_attempts FROM keystile_tokens")[0]["failed_attempts"] == 4
    assert await redeem(db, ["wrong"]) is False
    assert await redeem(db, ["code"]) is False
    [row] = rows(db, "SELECT failed_attempts, revoked_at FROM keystile_tokens")
    assert row["failed_attempts"] == 5
    assert row["revoked_at"] is not None


async def test_expired_codes_never_redeem(db: Database) -> None:
    """At the expiry instant the code is dead."""
    await store_code(db, "code")
    assert await redeem(db, ["code"], now=LATER) is False


async def test_parallel_redeems_of_one_code_give_one_hit(db: Database) -> None:
    """Twenty concurrent consumes of one code: exactly one wins."""
    await store_code(db, "code")
    results: list[bool] = []

    async def attempt() -> None:
        results.append(await redeem(db, ["code"]))

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(attempt)
    assert results.count(True) == 1


async def test_codes_may_be_reusable_when_single_use_is_off(db: Database) -> None:
    """single_use=False: the code works until it expires."""
    await store_code(db, "code")
    assert await redeem(db, ["code"], single_use=False) is True
    assert await redeem(db, ["code"], single_use=False) is True


async def test_the_same_code_drawn_again_for_one_identity_is_stored_and_live_once(
    db: Database,
) -> None:
    """A code drawn twice (same id) replaces its old row instead of hitting the primary key.

    With ``digits_only`` and a short length the same code for one identity is
    a matter of time; the second request used to answer 500 (issue 7, item 10).
    """
    await store_code(db, "same")
    await store_code(db, "other")
    await store_code(db, "same")
    [row] = rows(db, "SELECT revoked_at, failed_attempts FROM keystile_tokens WHERE jti = 'same'")
    assert row == {"revoked_at": None, "failed_attempts": 0}
    assert await redeem(db, ["other"]) is False
    assert await redeem(db, ["same"]) is True
    assert await redeem(db, ["same"]) is False
