"""The token repository: every issued token's id, so it can be revoked and consumed once."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, insert, select, update

from keystile.store.database import Database, in_thread
from keystile.store.prepared import Prepared
from keystile.store.sign_ins import lock_identity
from keystile.store.tables import tokens, users
from keystile.store.types import UTCDateTime
from keystile.store.users import USER_COLUMNS, User, user_from_row

# Compiled once: this is the token check of every authenticated request.
_ACTIVE_USER = Prepared(
    select(*USER_COLUMNS).where(
        users.c.id == bindparam("user_id"),
        exists().where(
            tokens.c.jti == bindparam("jti"),
            tokens.c.subject == bindparam("subject"),
            tokens.c.revoked_at.is_(None),
            tokens.c.expires_at > bindparam("now", type_=UTCDateTime()),
        ),
    )
)


class TokenStore:
    """Token rows on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @in_thread
    def add(
        self,
        *,
        jti: str,
        purpose: str,
        subject: str,
        now: datetime,
        expires_at: datetime,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an issued token."""
        with self.db.write() as conn:
            conn.execute(
                insert(tokens).values(
                    jti=jti,
                    purpose=purpose,
                    subject=subject,
                    created_at=now,
                    expires_at=expires_at,
                    revoked_at=None,
                    extra=dict(extra) if extra else None,
                )
            )

    @in_thread
    def active_user(self, *, jti: str, user_id: uuid.UUID, now: datetime) -> User | None:
        """The user behind a live (unrevoked, unexpired) token, in one query; else ``None``."""
        parameters = {"user_id": user_id, "jti": jti, "subject": str(user_id), "now": now}
        with self.db.driver_read() as conn:
            row = _ACTIVE_USER.first(conn, parameters)
        return user_from_row(row) if row is not None else None

    @in_thread
    def revoke(self, jti: str, *, now: datetime) -> bool:
        """Revoke one token; ``True`` if it was live until now."""
        with self.db.write() as conn:
            result = conn.execute(
                update(tokens)
                .where(tokens.c.jti == jti, tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return result.rowcount == 1

    @in_thread
    def replace(
        self,
        *,
        jti: str,
        purpose: str,
        subject: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        """Revoke the subject's live tokens of ``purpose`` and record a new one, atomically.

        The subject's writes take turns (:func:`~keystile.store.sign_ins.lock_identity`),
        so concurrent replaces leave exactly one live token.
        """
        with self.db.write() as conn:
            lock_identity(conn, subject)
            conn.execute(
                update(tokens)
                .where(
                    tokens.c.subject == subject,
                    tokens.c.purpose == purpose,
                    tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            conn.execute(
                insert(tokens).values(
                    jti=jti,
                    purpose=purpose,
                    subject=subject,
                    created_at=now,
                    expires_at=expires_at,
                    revoked_at=None,
                    extra=None,
                )
            )

    @in_thread
    def purge_expired(self, *, now: datetime) -> int:
        """Delete rows past their expiry; returns how many."""
        with self.db.write() as conn:
            result = conn.execute(delete(tokens).where(tokens.c.expires_at <= now))
        return result.rowcount
