"""Pending password registrations: a password waits here until its address is proved.

A registration stores the new password's hash on a token row (purpose
``password_registration``, subject the normalised email, id the keyed hash of
the confirmation code mailed to that address). Only the code's holder can
move the hash onto the user, so nobody can pre-register someone else's
address with a password of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select, update

from keystile.store.database import Database, in_thread
from keystile.store.tables import tokens, users
from keystile.store.users import USER_COLUMNS, User, user_from_row

PURPOSE = "password_registration"


class RegistrationStore:
    """Pending registrations on SQLite or PostgreSQL (callers pass normalised emails)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @in_thread
    def replace_pending(
        self,
        *,
        identity: str,
        code_id: str,
        password_hash: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        """Make ``code_id`` the identity's only live pending registration (one transaction)."""
        with self.db.write() as conn:
            conn.execute(
                update(tokens)
                .where(
                    tokens.c.purpose == PURPOSE,
                    tokens.c.subject == identity,
                    tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            # A code drawn twice for one identity reuses its id: drop the old row first.
            conn.execute(
                tokens.delete().where(tokens.c.jti == code_id, tokens.c.purpose == PURPOSE)
            )
            conn.execute(
                insert(tokens).values(
                    jti=code_id,
                    purpose=PURPOSE,
                    subject=identity,
                    created_at=now,
                    expires_at=expires_at,
                    revoked_at=None,
                    extra={"password_hash": password_hash},
                )
            )

    @in_thread
    def confirm(self, *, identity: str, code_ids: Sequence[str], now: datetime) -> User | None:
        """Consume a live pending registration and give its password to the user.

        One transaction: the row is used up by one conditional ``UPDATE … RETURNING``
        (so of parallel confirmations exactly one wins), then the user is created,
        or an existing user's password is replaced (the code proves the address).
        ``None`` when no live row matches.
        """
        with self.db.write() as conn:
            row = conn.execute(
                update(tokens)
                .where(
                    tokens.c.jti.in_(list(code_ids)),
                    tokens.c.purpose == PURPOSE,
                    tokens.c.subject == identity,
                    tokens.c.revoked_at.is_(None),
                    tokens.c.expires_at > now,
                )
                .values(revoked_at=now)
                .returning(tokens.c.extra)
            ).first()
            if row is None:
                return None
            password_hash = str(row[0]["password_hash"])
            found = conn.execute(select(*USER_COLUMNS).where(users.c.email == identity)).first()
            if found is not None:
                user = user_from_row(found)
                conn.execute(
                    update(users)
                    .where(users.c.id == user.id)
                    .values(password_hash=password_hash, updated_at=now)
                )
                return user
            user = User(
                id=uuid.uuid4(),
                email=identity,
                password_hash=password_hash,
                created_at=now,
                updated_at=now,
            )
            conn.execute(
                insert(users).values(
                    id=user.id,
                    email=identity,
                    password_hash=password_hash,
                    created_at=now,
                    updated_at=now,
                )
            )
            return user
