"""Per-identity write locks: one identity's write transactions take turns.

Why: under PostgreSQL's READ COMMITTED, two transactions that each "revoke
the live codes, insert a new one" see only committed rows, so a burst of
requests left several live codes; likewise a count of earlier failures
(audit-log protection) misses those still in flight. A transaction-scoped
advisory lock per identity makes them take turns (other identities stay
free) and is released at commit or rollback. SQLite needs nothing:
``BEGIN IMMEDIATE`` already gives every write transaction the database to
itself.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import BigInteger, bindparam, func, select

from keystile.store.prepared import Executor, Prepared

_IDENTITY_LOCK = Prepared(
    select(func.pg_advisory_xact_lock(bindparam("identity_lock", type_=BigInteger())))
)


def identity_lock_id(identity: str) -> int:
    """The signed 64-bit PostgreSQL advisory-lock id of ``identity``'s writes.

    From SHA-256, so every process derives the same id; the prefix keeps it
    apart from the rate limiter's key locks. Two identities that collide
    merely queue behind each other.
    """
    digest = hashlib.sha256(b"keystile:identity:" + identity.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_identity(conn: Executor, identity: str) -> None:
    """Serialise the write transactions of one identity; the first step of each.

    Taken before any rate-limit key lock, so every transaction locks in one order.
    """
    if conn.dialect.name == "postgresql":
        _IDENTITY_LOCK.first(conn, {"identity_lock": identity_lock_id(identity)})
