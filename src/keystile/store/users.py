"""The user repository."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from keystile.errors import AlreadyRegisteredError
from keystile.store.database import Database, in_thread
from keystile.store.prepared import Executor, Prepared
from keystile.store.tables import users


@dataclass(frozen=True, slots=True)
class User:
    """A user as stored. ``email`` is always normalised."""

    id: uuid.UUID
    email: str
    created_at: datetime
    updated_at: datetime
    password_hash: str | None = field(default=None, repr=False)

    @property
    def subject(self) -> str:
        """The ``sub`` claim of this user's tokens."""
        return str(self.id)


def user_from_row(row: Sequence[Any]) -> User:
    """A :class:`User` from a row of :data:`USER_COLUMNS`, in that order.

    Positional, so a SQLAlchemy ``Row`` and a prepared statement's tuple both fit.
    """
    user_id, email, password_hash, created_at, updated_at = row
    return User(
        id=user_id,
        email=email,
        password_hash=password_hash,
        created_at=created_at,
        updated_at=updated_at,
    )


USER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.password_hash,
    users.c.created_at,
    users.c.updated_at,
)


_BY_EMAIL = Prepared(select(*USER_COLUMNS).where(users.c.email == bindparam("email")))
_BY_ID = Prepared(select(*USER_COLUMNS).where(users.c.id == bindparam("user_id")))
_ID_BY_EMAIL = Prepared(select(users.c.id).where(users.c.email == bindparam("email")))
_INSERT = Prepared(
    insert(users).values(
        id=bindparam("id"),
        email=bindparam("email"),
        password_hash=bindparam("password_hash"),
        created_at=bindparam("created_at"),
        updated_at=bindparam("updated_at"),
    )
)
_SET_PASSWORD_HASH = Prepared(
    update(users)
    .where(users.c.id == bindparam("user_id"))
    .values(password_hash=bindparam("password_hash"), updated_at=bindparam("updated_at"))
)


def find_by_email(conn: Executor, email: str) -> User | None:
    """The user with normalised ``email``, or ``None`` (inside the caller's transaction)."""
    row = _BY_EMAIL.first(conn, {"email": email})
    return user_from_row(row) if row is not None else None


def find_by_id(conn: Executor, user_id: uuid.UUID) -> User | None:
    """The user with ``user_id``, or ``None`` (inside the caller's transaction)."""
    row = _BY_ID.first(conn, {"user_id": user_id})
    return user_from_row(row) if row is not None else None


def find_subject_by_email(conn: Executor, email: str) -> str | None:
    """Only the ``sub`` of the user with ``email``: the cheapest existence check.

    Reading the id alone keeps a known identity's cost close to an unknown
    one's, where an answer's timing must not tell them apart.
    """
    row = _ID_BY_EMAIL.first(conn, {"email": email})
    return str(row[0]) if row is not None else None


def insert_user(conn: Executor, email: str, *, password_hash: str | None, now: datetime) -> User:
    """Insert a new user; the unique index on ``email`` refuses a second one."""
    user = User(
        id=uuid.uuid4(), email=email, password_hash=password_hash, created_at=now, updated_at=now
    )
    _INSERT.execute(
        conn,
        {
            "id": user.id,
            "email": email,
            "password_hash": password_hash,
            "created_at": now,
            "updated_at": now,
        },
    )
    return user


def set_password_hash(
    conn: Executor, user_id: uuid.UUID, password_hash: str, *, now: datetime
) -> None:
    """Replace a user's password hash."""
    _SET_PASSWORD_HASH.execute(
        conn, {"user_id": user_id, "password_hash": password_hash, "updated_at": now}
    )


class UserStore:
    """Users on SQLite or PostgreSQL. Callers pass normalised emails."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @in_thread
    def create(self, email: str, *, password_hash: str | None, now: datetime) -> User:
        """Insert a new user.

        Raises:
            AlreadyRegisteredError: the email is taken (decided by the unique index,
                so two parallel registrations cannot both win).
        """
        try:
            with self.db.write() as conn:
                return insert_user(conn, email, password_hash=password_hash, now=now)
        except self.db.integrity_errors:
            raise AlreadyRegisteredError() from None

    @in_thread
    def get_by_email(self, email: str) -> User | None:
        """The user with normalised ``email``, or ``None``."""
        with self.db.driver_read() as conn:
            return find_by_email(conn, email)

    @in_thread
    def get(self, user_id: uuid.UUID) -> User | None:
        """The user with ``user_id``, or ``None``."""
        with self.db.read() as conn:
            row = conn.execute(select(*USER_COLUMNS).where(users.c.id == user_id)).first()
        return user_from_row(row) if row is not None else None

    @in_thread
    def list(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        """Users in order of creation."""
        query = (
            select(*USER_COLUMNS)
            .order_by(users.c.created_at, users.c.email)
            .limit(limit)
            .offset(offset)
        )
        with self.db.read() as conn:
            return [user_from_row(row) for row in conn.execute(query)]

    @in_thread
    def set_password_hash(self, user_id: uuid.UUID, password_hash: str, *, now: datetime) -> None:
        """Replace the user's password hash (after a rehash with new parameters)."""
        with self.db.write() as conn:
            set_password_hash(conn, user_id, password_hash, now=now)
