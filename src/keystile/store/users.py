"""The user repository."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from keystile.errors import AlreadyRegisteredError
from keystile.store.database import Database, in_thread
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
        user = User(
            id=uuid.uuid4(),
            email=email,
            password_hash=password_hash,
            created_at=now,
            updated_at=now,
        )
        try:
            with self.db.write() as conn:
                conn.execute(
                    insert(users).values(
                        id=user.id,
                        email=email,
                        password_hash=password_hash,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise AlreadyRegisteredError() from None
        return user

    @in_thread
    def get_by_email(self, email: str) -> User | None:
        """The user with normalised ``email``, or ``None``."""
        with self.db.read() as conn:
            row = conn.execute(select(*USER_COLUMNS).where(users.c.email == email)).first()
        return user_from_row(row) if row is not None else None

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
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(password_hash=password_hash, updated_at=now)
            )
