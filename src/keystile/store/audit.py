"""The audit repository: one row per authentication attempt."""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select

from keystile.store.database import Database, in_thread
from keystile.store.prepared import Executor, Prepared
from keystile.store.tables import audit_events

BLOCKED_SUFFIX = "_blocked"
"""Appended to the action of an attempt a brute-force limit refused: such
records are not failures of the action, so a lockout does not extend itself."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One attempt. Never holds a code, secret or token."""

    occurred_at: datetime
    strategy: str
    action: str
    success: bool
    subject: str | None = None
    identity: str | None = None
    client_address: str | None = None


def insert_event(conn: Executor, event: AuditEvent) -> None:
    """Insert ``event`` inside the caller's transaction."""
    _INSERT.execute(
        conn,
        {
            "occurred_at": event.occurred_at,
            "strategy": event.strategy,
            "action": event.action,
            "success": event.success,
            "subject": event.subject,
            "identity": event.identity,
            "client_address": event.client_address,
        },
    )


_INSERT = Prepared(
    insert(audit_events).values(
        {
            name: bindparam(name)
            for name in (
                "occurred_at",
                "strategy",
                "action",
                "success",
                "subject",
                "identity",
                "client_address",
            )
        }
    )
)


@functools.cache
def _nth_failure(n: int, actions: tuple[str, ...] | None) -> Prepared:
    query = (
        select(audit_events.c.occurred_at)
        .where(
            audit_events.c.identity == bindparam("identity"),
            audit_events.c.strategy == bindparam("strategy"),
            audit_events.c.success.is_(False),
            audit_events.c.occurred_at > bindparam("since"),
        )
        .order_by(audit_events.c.occurred_at.desc())
        .limit(1)
        .offset(n - 1)
    )
    if actions is not None:
        query = query.where(
            audit_events.c.action.in_([bindparam(f"action{i}") for i in range(len(actions))])
        )
    return Prepared(query)


def nth_latest_failure(
    conn: Executor,
    *,
    identity: str,
    strategy: str,
    since: datetime,
    n: int,
    actions: Collection[str] | None = None,
) -> datetime | None:
    """When the ``n``-th most recent failure of ``identity`` after ``since`` happened.

    ``None`` when there are fewer than ``n``. For a block of "``n``
    failures within a window" this is both the verdict (blocked if not
    ``None``) and the time the block lifts (this failure plus the window),
    in one indexed query that reads at most ``n`` rows.

    ``actions`` limits the search to those actions (blocked attempts are
    recorded under ``<action>_blocked`` and so are not counted by naming
    the plain actions: a lockout does not extend itself).
    """
    names = tuple(sorted(actions)) if actions is not None else None
    values: dict[str, object] = {"identity": identity, "strategy": strategy, "since": since}
    values.update({f"action{i}": name for i, name in enumerate(names or ())})
    row = _nth_failure(n, names).first(conn, values)
    return row[0] if row is not None else None


class AuditStore:
    """Audit events on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @in_thread
    def record(self, event: AuditEvent) -> None:
        """Append one event."""
        with self.db.write() as conn:
            insert_event(conn, event)

    @in_thread
    def nth_latest_failure(
        self,
        *,
        identity: str,
        strategy: str,
        since: datetime,
        n: int,
        actions: Collection[str] | None = None,
    ) -> datetime | None:
        """See :func:`nth_latest_failure` (its own read)."""
        with self.db.driver_read() as conn:
            return nth_latest_failure(
                conn, identity=identity, strategy=strategy, since=since, n=n, actions=actions
            )

    @in_thread
    def purge(self, *, before: datetime) -> int:
        """Delete events older than ``before`` (a retention policy); returns how many."""
        with self.db.write() as conn:
            return conn.execute(
                delete(audit_events).where(audit_events.c.occurred_at < before)
            ).rowcount

    @in_thread
    def recent(self, *, limit: int = 50) -> list[AuditEvent]:
        """The newest events first."""
        query = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
        with self.db.read() as conn:
            return [
                AuditEvent(
                    occurred_at=row.occurred_at,
                    strategy=row.strategy,
                    action=row.action,
                    success=bool(row.success),
                    subject=row.subject,
                    identity=row.identity,
                    client_address=row.client_address,
                )
                for row in conn.execute(query)
            ]
