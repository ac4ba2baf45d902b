"""The hot-path executor: prepared statements on driver transactions, on both databases.

A :class:`Prepared` statement must give exactly what ``conn.execute`` gives
(types converted both ways, row counts), and a driver transaction must keep
the promises of :meth:`Database.write`: all or nothing, and a locked or
unreachable store is :class:`UnavailableError`.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, func, insert, make_url, select, update

from keystile.errors import UnavailableError
from keystile.store.database import Database
from keystile.store.prepared import Prepared
from keystile.store.tables import tokens, users
from keystile.store.types import UTCDateTime
from tests.servers import free_port

NOW = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)

_INSERT_USER = Prepared(
    insert(users).values(
        id=bindparam("id"),
        email=bindparam("email"),
        password_hash=None,
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
)
_USER = Prepared(
    select(users.c.id, users.c.email, users.c.created_at).where(users.c.email == bindparam("email"))
)
_INSERT_TOKEN = Prepared(
    insert(tokens).values(
        jti=bindparam("jti"),
        purpose="otp",  # a value given at build time is the default
        subject=bindparam("subject"),
        created_at=bindparam("now"),
        expires_at=bindparam("expires"),
    )
)
_REVOKE = Prepared(
    update(tokens)
    .where(tokens.c.subject == bindparam("subject"), tokens.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now", type_=UTCDateTime()))
)
_LIVE = Prepared(
    select(tokens.c.jti, tokens.c.purpose)
    .where(tokens.c.revoked_at.is_(None))
    .order_by(tokens.c.jti)
)
_COUNT = Prepared(select(func.count()).select_from(tokens))


def test_round_trip_converts_types_like_sqlalchemy(db: Database) -> None:
    """UUIDs and aware datetimes go in and come out as SQLAlchemy itself would give them."""
    user_id = uuid.uuid4()
    with db.driver_write() as conn:
        assert _INSERT_USER.execute(conn, {"id": user_id, "email": "a@example.com", "now": NOW})
    with db.driver_read() as conn:
        row = _USER.first(conn, {"email": "a@example.com"})
        assert _USER.first(conn, {"email": "nobody@example.com"}) is None
    assert row == (user_id, "a@example.com", NOW)
    assert row is not None
    assert row[2].tzinfo is not None
    with db.read() as conn:
        expected = conn.execute(_USER.statement, {"email": "a@example.com"}).one()
    assert tuple(expected) == row


def test_row_counts_and_defaults(db: Database) -> None:
    """``execute`` gives the rows changed; values fixed at build time are used."""
    later = NOW + timedelta(minutes=5)
    with db.driver_write() as conn:
        for jti, subject in (("j1", "s1"), ("j2", "s1"), ("j3", "s2")):
            values = {"jti": jti, "subject": subject, "now": NOW, "expires": later}
            _INSERT_TOKEN.execute(conn, values)
    with db.driver_write() as conn:
        assert _REVOKE.execute(conn, {"subject": "s1", "now": NOW}) == 2
        assert _REVOKE.execute(conn, {"subject": "s1", "now": NOW}) == 0
    with db.driver_read() as conn:
        assert _LIVE.all(conn) == [("j3", "otp")]


def test_a_failed_transaction_changes_nothing(db: Database) -> None:
    """An error inside ``driver_write`` rolls back every statement before it."""

    def fail_after_a_write() -> None:
        with db.driver_write() as conn:
            _INSERT_TOKEN.execute(conn, {"jti": "j", "subject": "s", "now": NOW, "expires": NOW})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_after_a_write()
    with db.driver_read() as conn:
        assert _COUNT.first(conn) == (0,)


def test_a_missing_parameter_is_refused_before_anything_runs(db: Database) -> None:
    """Forgetting a parameter is a bug, not a silent NULL."""
    with pytest.raises(KeyError, match="subject"), db.driver_write() as conn:
        _INSERT_TOKEN.execute(conn, {"jti": "j", "now": NOW, "expires": NOW})


def test_expanding_parameters_are_refused(db: Database) -> None:
    """An IN list of varying length cannot be compiled once."""
    statement = Prepared(
        select(tokens.c.jti).where(tokens.c.jti.in_(bindparam("jtis", expanding=True)))
    )
    with pytest.raises(ValueError, match="expanding"), db.driver_read() as conn:
        statement.all(conn, {"jtis": ["a"]})


def test_sqlite_locked_past_the_busy_timeout_is_unavailable(tmp_path: Path) -> None:
    """Another process holding the write lock too long gives 503, not a hang or a 500."""
    path = tmp_path / "locked.db"
    db = Database(f"sqlite:///{path}", busy_timeout_seconds=0.2)
    try:
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(UnavailableError), db.driver_write() as conn:
                pass
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        with db.driver_write():
            pass  # the pool is healthy again once the lock is gone
    finally:
        db.dispose()


def test_postgresql_unreachable_is_unavailable(postgres_url: str) -> None:
    """A refused connection on the driver path is UnavailableError too."""
    url = make_url(postgres_url).set(port=free_port()).render_as_string(hide_password=False)
    db = Database(url)
    try:
        with pytest.raises(UnavailableError), db.driver_read():
            pass
    finally:
        db.dispose()
