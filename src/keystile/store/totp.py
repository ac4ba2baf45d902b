"""The TOTP authenticator repository: sealed secrets, pending setups, the last accepted step.

Module-level functions that run inside the caller's transaction
(``with db.driver_write() as conn:``); none opens a transaction or holds
policy. Two of them are the single-use rules of TOTP and are each one
conditional statement checked by its row count, never read-then-write:

- :func:`record_step` accepts a time step only if it is later than the last
  accepted one, so of any number of parallel verifications of one code
  exactly one succeeds;
- :func:`reseal` replaces a sealed secret only if it still holds the value
  the rotation read, so rotation is safe while the service serves.

Secrets are stored only sealed (``keystile.strategies.totp.sealing``); this
module never sees one in clear.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, bindparam, delete, func, insert, or_, select, update

from keystile.store.prepared import Executor, Prepared
from keystile.store.tables import totp_authenticators as table
from keystile.store.types import UTCDateTime


@dataclass(frozen=True, slots=True)
class Authenticator:
    """One stored authenticator (``confirmed_at`` ``None``: a pending setup)."""

    id: str
    user_id: uuid.UUID
    sealed_secret: str = field(repr=False)
    key_id: str
    algorithm: str
    digits: int
    period: int
    last_step: int | None
    created_at: datetime
    confirmed_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the setup was confirmed (the authenticator is the user's second factor)."""
        return self.confirmed_at is not None


@dataclass(frozen=True, slots=True)
class SealedRow:
    """What key rotation needs of a row."""

    id: str
    user_id: uuid.UUID
    sealed_secret: str = field(repr=False)
    key_id: str


_COLUMNS = (
    table.c.id,
    table.c.user_id,
    table.c.sealed_secret,
    table.c.key_id,
    table.c.algorithm,
    table.c.digits,
    table.c.period,
    table.c.last_step,
    table.c.created_at,
    table.c.confirmed_at,
)


def _authenticator(row: Sequence[Any]) -> Authenticator:
    return Authenticator(*row)


_INSERT = Prepared(
    insert(table).values(
        id=bindparam("id"),
        user_id=bindparam("user_id"),
        sealed_secret=bindparam("sealed_secret"),
        key_id=bindparam("key_id"),
        algorithm=bindparam("algorithm"),
        digits=bindparam("digits"),
        period=bindparam("period"),
        last_step=None,
        created_at=bindparam("created_at"),
        confirmed_at=None,
    )
)

_ACTIVE = Prepared(
    select(*_COLUMNS)
    .where(table.c.user_id == bindparam("user_id"), table.c.confirmed_at.is_not(None))
    .order_by(table.c.confirmed_at.desc())
    .limit(1)
)

_PENDING = Prepared(
    select(*_COLUMNS).where(
        table.c.id == bindparam("id"),
        table.c.user_id == bindparam("user_id"),
        table.c.confirmed_at.is_(None),
    )
)

_STEP_IS_LATER = or_(table.c.last_step.is_(None), table.c.last_step < bindparam("step"))

_CONFIRM = Prepared(
    update(table)
    .where(
        table.c.id == bindparam("id"),
        table.c.user_id == bindparam("user_id"),
        table.c.confirmed_at.is_(None),
        _STEP_IS_LATER,
    )
    .values(
        last_step=bindparam("step", type_=BigInteger()),
        confirmed_at=bindparam("now", type_=UTCDateTime()),
    )
)

_DELETE_OTHERS = Prepared(
    delete(table).where(table.c.user_id == bindparam("user_id"), table.c.id != bindparam("keep_id"))
)

_RECORD_STEP = Prepared(
    update(table)
    .where(table.c.id == bindparam("id"), _STEP_IS_LATER)
    .values(last_step=bindparam("step", type_=BigInteger()))
)

_DELETE_FOR_USER = Prepared(delete(table).where(table.c.user_id == bindparam("user_id")))

_DELETE_PENDING = Prepared(
    delete(table).where(table.c.user_id == bindparam("user_id"), table.c.confirmed_at.is_(None))
)

_PURGE_PENDING = Prepared(
    delete(table).where(
        table.c.confirmed_at.is_(None),
        table.c.created_at < bindparam("before", type_=UTCDateTime()),
    )
)

_NOT_UNDER = Prepared(
    select(table.c.id, table.c.user_id, table.c.sealed_secret, table.c.key_id)
    .where(table.c.key_id != bindparam("kid"), table.c.id > bindparam("after"))
    .order_by(table.c.id)
    .limit(bindparam("limit"))
)

_RESEAL = Prepared(
    update(table)
    .where(table.c.id == bindparam("id"), table.c.sealed_secret == bindparam("old_sealed"))
    .values(sealed_secret=bindparam("new_sealed"), key_id=bindparam("new_kid"))
)

_USER_LOCK = Prepared(select(func.pg_advisory_xact_lock(bindparam("lock", type_=BigInteger()))))


def _lock_user(conn: Executor, user_id: uuid.UUID) -> None:
    """Serialise the enrolment changes of one user on PostgreSQL (SQLite's
    ``BEGIN IMMEDIATE`` already does).

    Why: two confirmations of two pending setups of one user would each
    update their own row and delete the other's, locking the rows in
    opposite orders: a deadlock. Transaction-scoped, released at commit;
    the prefix keeps it apart from the sign-in and limiter locks.
    """
    if conn.dialect.name == "postgresql":
        digest = hashlib.sha256(b"keystile:totp-user:" + user_id.bytes).digest()
        _USER_LOCK.first(conn, {"lock": int.from_bytes(digest[:8], "big", signed=True)})


def insert_pending(
    conn: Executor,
    *,
    authenticator_id: str,
    user_id: uuid.UUID,
    sealed_secret: str,
    key_id: str,
    algorithm: str,
    digits: int,
    period: int,
    now: datetime,
) -> None:
    """Store a pending setup (not yet confirmed, no step accepted).

    The user's other authenticators are left alone: an active one stays the
    second factor until :func:`activate` replaces it.
    """
    _INSERT.execute(
        conn,
        {
            "id": authenticator_id,
            "user_id": user_id,
            "sealed_secret": sealed_secret,
            "key_id": key_id,
            "algorithm": algorithm,
            "digits": digits,
            "period": period,
            "created_at": now,
        },
    )


def get_active(conn: Executor, user_id: uuid.UUID) -> Authenticator | None:
    """The user's confirmed authenticator, or ``None`` (no TOTP second factor)."""
    row = _ACTIVE.first(conn, {"user_id": user_id})
    return _authenticator(row) if row is not None else None


def get_pending(conn: Executor, authenticator_id: str, user_id: uuid.UUID) -> Authenticator | None:
    """The pending setup ``authenticator_id`` of ``user_id``, or ``None``.

    Bound to the user: another user's id finds nothing. The caller judges
    its age by ``created_at``.
    """
    row = _PENDING.first(conn, {"id": authenticator_id, "user_id": user_id})
    return _authenticator(row) if row is not None else None


def activate(
    conn: Executor, authenticator_id: str, user_id: uuid.UUID, step: int, now: datetime
) -> bool:
    """Confirm a pending setup with the step its code matched; remove every other
    authenticator of the user.

    One conditional ``UPDATE`` (still pending, still the user's, ``step``
    later than any recorded) checked by row count, then the ``DELETE`` of the
    others, in the caller's transaction. ``False`` (and nothing changed) when
    the setup is gone, already confirmed, or the step is not later: of two
    parallel confirmations exactly one succeeds. Takes the user's enrolment
    lock on PostgreSQL (after any identity and limiter locks the caller holds).
    """
    _lock_user(conn, user_id)
    values = {"id": authenticator_id, "user_id": user_id, "step": step, "now": now}
    if _CONFIRM.execute(conn, values) != 1:
        return False
    _DELETE_OTHERS.execute(conn, {"user_id": user_id, "keep_id": authenticator_id})
    return True


def record_step(conn: Executor, authenticator_id: str, step: int) -> bool:
    """Accept ``step`` for the authenticator if it is later than the last accepted one.

    One atomic ``UPDATE … SET last_step = :step WHERE id = :id AND (last_step
    IS NULL OR last_step < :step)``: ``True`` for exactly one of any number of
    concurrent calls with one step; ``False`` for a replayed (or earlier)
    step, or an authenticator that no longer exists.
    """
    return _RECORD_STEP.execute(conn, {"id": authenticator_id, "step": step}) == 1


def delete_for_user(conn: Executor, user_id: uuid.UUID) -> int:
    """Remove every authenticator of the user, active and pending; how many there were."""
    return _DELETE_FOR_USER.execute(conn, {"user_id": user_id})


def delete_pending(conn: Executor, user_id: uuid.UUID) -> int:
    """Remove the user's pending setups (say, before a new one); how many there were."""
    return _DELETE_PENDING.execute(conn, {"user_id": user_id})


def purge_pending(conn: Executor, *, before: datetime) -> int:
    """Remove pending setups created before ``before`` (abandoned); how many."""
    return _PURGE_PENDING.execute(conn, {"before": before})


def rows_not_under(conn: Executor, kid: str, limit: int, *, after: str = "") -> list[SealedRow]:
    """Up to ``limit`` rows sealed under a key other than ``kid``, by id, after id ``after``.

    Passing the last id seen as ``after`` walks the table once even when
    some rows cannot be resealed (say, their key left the ring), so a
    rotation always ends.
    """
    rows = _NOT_UNDER.all(conn, {"kid": kid, "after": after, "limit": limit})
    return [SealedRow(*row) for row in rows]


def reseal(
    conn: Executor, authenticator_id: str, old_sealed: str, new_sealed: str, new_kid: str
) -> bool:
    """Replace the sealed secret if it is still ``old_sealed``; whether it was.

    ``False`` when the row changed or went away since it was read (the user
    re-enrolled or was reset): the newer value is left as it is.
    """
    values = {
        "id": authenticator_id,
        "old_sealed": old_sealed,
        "new_sealed": new_sealed,
        "new_kid": new_kid,
    }
    return _RESEAL.execute(conn, values) == 1
