"""The recovery-code repository: one user's batch of hashed, single-use codes.

Functions of a connection (:class:`~keystile.store.prepared.Executor`) that
run inside the caller's transaction (``with db.driver_write() as conn:``);
none opens a transaction or holds policy (which mode, when to rotate, what
to audit). Rows hold a code's stored form only (see
:mod:`keystile.strategies.recovery_code.core`), never the code.

Single use is :func:`consume`: one ``UPDATE … WHERE used_at IS NULL``
checked by its row count, so of any number of parallel uses of one code
exactly one succeeds. The hash carries the user id, so the lookup goes
through the unique index on ``code_hash`` and costs the same with ten or a
million stored codes; the ``user_id`` condition is a second lock on the door.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import BigInteger, Uuid, bindparam, case, delete, func, insert, select, update

from keystile.store.prepared import Executor, Prepared
from keystile.store.tables import recovery_codes
from keystile.store.types import UTCDateTime

_codes = recovery_codes.c
_OF_USER = _codes.user_id == bindparam("user_id", type_=Uuid(as_uuid=True))


class RecoveryCodeStatus(NamedTuple):
    """How many of a user's codes are left.

    ``total`` counts every row of the current batch, used or not (under
    ``rotate_on_use`` the used codes stay, so it grows by one per use);
    ``generated_at`` is when the batch was generated, ``None`` without one.
    """

    remaining: int
    total: int
    generated_at: datetime | None


_USER_LOCK = Prepared(
    select(func.pg_advisory_xact_lock(bindparam("user_lock", type_=BigInteger())))
)

_DELETE_FOR_USER = Prepared(delete(recovery_codes).where(_OF_USER))

_INSERT = Prepared(
    insert(recovery_codes).values(
        user_id=bindparam("user_id", type_=Uuid(as_uuid=True)),
        code_hash=bindparam("code_hash"),
        key_id=bindparam("key_id"),
        batch_id=bindparam("batch_id"),
        created_at=bindparam("created_at", type_=UTCDateTime()),
        used_at=None,
    )
)

#: The new code joins the batch the user holds now; with no batch (reset or
#: regenerated in between) nothing is inserted.
_ADD_TO_CURRENT_BATCH = Prepared(
    insert(recovery_codes).from_select(
        ["user_id", "code_hash", "key_id", "batch_id", "created_at"],
        select(
            bindparam("new_user_id", type_=Uuid(as_uuid=True)),
            bindparam("code_hash"),
            bindparam("key_id"),
            _codes.batch_id,
            bindparam("created_at", type_=UTCDateTime()),
        )
        .where(_OF_USER)
        .order_by(_codes.id.desc())
        .limit(1),
    )
)

_STATUS = Prepared(
    select(
        func.count(case((_codes.used_at.is_(None), 1))),
        func.count(),
        func.min(_codes.created_at),
    ).where(_OF_USER)
)

_HAS_UNUSED = Prepared(select(_codes.id).where(_OF_USER, _codes.used_at.is_(None)).limit(1))

_UNUSED_HASHES = Prepared(
    select(_codes.code_hash, _codes.key_id)
    .where(_OF_USER, _codes.used_at.is_(None))
    .order_by(_codes.id)
)


@functools.cache
def _consume(candidates: int) -> Prepared:
    """Mark used an unused code of the user among ``candidates`` hashes.

    One statement per candidate count: a prepared statement cannot expand an
    IN list, and the count is the size of the key ring (or 1).
    """
    return Prepared(
        update(recovery_codes)
        .where(
            _OF_USER,
            _codes.code_hash.in_([bindparam(f"hash{index}") for index in range(candidates)]),
            _codes.used_at.is_(None),
        )
        .values(used_at=bindparam("now", type_=UTCDateTime()))
    )


def user_lock_id(user_id: uuid.UUID) -> int:
    """The signed 64-bit PostgreSQL advisory-lock id of ``user_id``'s batch replacements.

    From SHA-256, so every process derives the same id; the prefix keeps it
    apart from the sign-in identity locks and the limiter's key locks.
    """
    digest = hashlib.sha256(b"keystile:recovery_codes:" + user_id.bytes).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def replace_batch(
    conn: Executor,
    user_id: uuid.UUID,
    hashes_with_kid: Sequence[tuple[str, str]],
    batch_id: str,
    now: datetime,
) -> None:
    """Remove every earlier code of the user and store the new batch.

    ``hashes_with_kid`` holds each code's ``(code_hash, key_id)``. On
    PostgreSQL the user's replacements first take turns on an advisory lock
    (held to the end of the transaction): under READ COMMITTED two parallel
    "delete, insert" transactions would otherwise each keep their own batch.
    SQLite needs nothing (``BEGIN IMMEDIATE`` serialises writers). Take it
    after any identity lock of the same transaction, never before.
    """
    if conn.dialect.name == "postgresql":
        _USER_LOCK.first(conn, {"user_lock": user_lock_id(user_id)})
    _DELETE_FOR_USER.execute(conn, {"user_id": user_id})
    for code_hash, key_id in hashes_with_kid:
        _INSERT.execute(
            conn,
            {
                "user_id": user_id,
                "code_hash": code_hash,
                "key_id": key_id,
                "batch_id": batch_id,
                "created_at": now,
            },
        )


def add_one(conn: Executor, user_id: uuid.UUID, code_hash: str, key_id: str, now: datetime) -> bool:
    """Add one code to the user's current batch (``rotate_on_use``: the used code's successor).

    Returns False, adding nothing, when the user holds no batch (it was
    deleted since the code was consumed): a reset is not undone by a rotation.
    """
    added = _ADD_TO_CURRENT_BATCH.execute(
        conn,
        {
            "new_user_id": user_id,
            "user_id": user_id,
            "code_hash": code_hash,
            "key_id": key_id,
            "created_at": now,
        },
    )
    return added > 0


def consume(
    conn: Executor, user_id: uuid.UUID, candidate_hashes: Sequence[str], now: datetime
) -> bool:
    """Use up the user's unused code stored under one of ``candidate_hashes``; whether one was.

    One conditional ``UPDATE`` checked by row count: of parallel uses of
    one code exactly one gets True. A code of another user never matches
    (its hash differs, and the row's ``user_id`` is checked as well).
    """
    if not candidate_hashes:
        return False
    values: dict[str, object] = {"user_id": user_id, "now": now}
    values.update({f"hash{index}": value for index, value in enumerate(candidate_hashes)})
    return _consume(len(candidate_hashes)).execute(conn, values) > 0


def status(conn: Executor, user_id: uuid.UUID) -> RecoveryCodeStatus:
    """The user's remaining and total codes and when the batch was generated."""
    row = _STATUS.first(conn, {"user_id": user_id})
    assert row is not None  # an aggregate always answers one row
    remaining, total, generated_at = row
    return RecoveryCodeStatus(int(remaining), int(total), generated_at)


def has_unused(conn: Executor, user_id: uuid.UUID) -> bool:
    """Whether the user holds at least one unused code (the guard's question; one index probe)."""
    return _HAS_UNUSED.first(conn, {"user_id": user_id}) is not None


def unused_hashes(conn: Executor, user_id: uuid.UUID) -> list[tuple[str, str]]:
    """``(code_hash, key_id)`` of each unused code of the user, oldest first.

    For ``argon2`` storage, where a salted hash cannot be looked up: the
    caller verifies the code against each (at most the batch size) and
    passes the matching hash to :func:`consume`.
    """
    return [
        (str(code_hash), str(key_id))
        for code_hash, key_id in _UNUSED_HASHES.all(conn, {"user_id": user_id})
    ]


def delete_for_user(conn: Executor, user_id: uuid.UUID) -> int:
    """Delete every code of the user (MFA reset, recovery codes turned off); how many."""
    return _DELETE_FOR_USER.execute(conn, {"user_id": user_id})
