"""The database limiter: one row per allowed hit in ``keystile_rate_limit_hits``.

Shared by every process using the database, so it suits a single host with
several workers on SQLite, or a small deployment on PostgreSQL without Redis.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import BigInteger, bindparam, delete, func, insert, select

from keystile.limits.rate import Decision, Rate, allowed, check_hit, denied
from keystile.store.database import Database
from keystile.store.prepared import Executor, Prepared
from keystile.store.tables import rate_limit_hits as hits

# Compiled once (see keystile.store.prepared): one attempt runs all of them.
_TRIM = Prepared(
    delete(hits).where(hits.c.key == bindparam("trim_key"), hits.c.hit_at <= bindparam("start"))
)
_COUNT = Prepared(
    select(func.count(), func.min(hits.c.hit_at)).where(
        hits.c.key == bindparam("count_key"), hits.c.hit_at > bindparam("start")
    )
)
_ADVISORY_LOCK = Prepared(
    select(func.pg_advisory_xact_lock(bindparam("lock_id", type_=BigInteger())))
)
_RECORD = Prepared(insert(hits).values(key=bindparam("key"), hit_at=bindparam("hit_at")))


class DatabaseRateLimiter:
    """Moving-window counts in SQL, one write transaction per hit.

    Atomic because each hit's delete, count and insert run in a transaction
    that holds the key exclusively: on SQLite ``BEGIN IMMEDIATE`` takes the
    database write lock, and on PostgreSQL a transaction-scoped advisory
    lock on the key serialises its writers (under READ COMMITTED two
    transactions could otherwise both count ``limit - 1`` and both insert)
    while leaving other keys free. A store error surfaces as
    :class:`~keystile.errors.UnavailableError` from :meth:`Database.write`.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    # Not ``@in_thread``: it types the result as ``Awaitable``, which does not
    # satisfy the ``async def`` members of the RateLimiter protocol.
    async def hit(self, key: str, rate: Rate, *, now: datetime) -> Decision:
        """See :meth:`keystile.limits.RateLimiter.hit`."""
        return await self.db.run(self._hit, key, rate, now)

    async def reset(self, key: str) -> None:
        """See :meth:`keystile.limits.RateLimiter.reset`."""
        await self.db.run(self._reset, key)

    async def aclose(self) -> None:
        """Nothing to release: the :class:`Database` belongs to the caller."""

    async def purge(self, *, before: datetime) -> int:
        """Delete every key's hits at or before ``before``; return how many went.

        A hit trims only its own key, so rows of keys nobody tries again stay
        until purged. Pass ``now`` minus the longest window in use: older hits
        cannot affect any decision.
        """
        return await self.db.run(self._purge, before)

    def counts_in(self, db: Database) -> bool:
        """See :meth:`keystile.limits.RateLimiter.counts_in`: yes, on its own database."""
        return db is self.db

    def hit_in(self, conn: Executor, key: str, rate: Rate, now: datetime) -> Decision:
        """:meth:`hit` inside the caller's write transaction on this limiter's database.

        For an attempt that is counted and verified in one transaction: one
        write-lock turn instead of two. The hit is as atomic as in :meth:`hit`
        (the transaction holds the write lock, or on PostgreSQL the key's
        advisory lock, until it ends) and is kept only if that transaction commits.
        """
        check_hit(key, now)
        self._lock(conn, key)
        _TRIM.execute(conn, {"trim_key": key, "start": now - rate.window})
        counted, oldest = self._count(conn, key, rate, now)
        if counted >= rate.limit:
            return denied(rate, oldest=oldest, now=now)
        _RECORD.execute(conn, {"key": key, "hit_at": now})
        return allowed(rate, counted=counted + 1)

    def peek_in(self, conn: Executor, key: str, rate: Rate, now: datetime) -> Decision:
        """See :meth:`keystile.limits.RateLimiter.peek_in`: counts the window, writes nothing."""
        check_hit(key, now)
        counted, oldest = self._count(conn, key, rate, now)
        if counted >= rate.limit:
            return denied(rate, oldest=oldest, now=now)
        return allowed(rate, counted=counted)

    @staticmethod
    def _count(conn: Executor, key: str, rate: Rate, now: datetime) -> tuple[int, datetime]:
        row = _COUNT.first(conn, {"count_key": key, "start": now - rate.window})
        counted, oldest = row if row is not None else (0, now)
        return int(counted), oldest or now

    def _hit(self, key: str, rate: Rate, now: datetime) -> Decision:
        with self.db.driver_write() as conn:
            return self.hit_in(conn, key, rate, now)

    def _reset(self, key: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(hits).where(hits.c.key == key))

    def _purge(self, before: datetime) -> int:
        with self.db.write() as conn:
            return conn.execute(delete(hits).where(hits.c.hit_at <= before)).rowcount

    def _lock(self, conn: Executor, key: str) -> None:
        if self.db.dialect == "postgresql":
            _ADVISORY_LOCK.first(conn, {"lock_id": advisory_lock_id(key)})


def advisory_lock_id(key: str) -> int:
    """The signed 64-bit PostgreSQL advisory-lock id for ``key``.

    Taken from SHA-256 so every process derives the same id; two keys that
    collide merely queue behind each other, which costs time, not correctness.
    """
    digest = hashlib.sha256(b"keystile:rate-limit:" + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
