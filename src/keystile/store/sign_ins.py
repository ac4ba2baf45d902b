"""The write path of a sign-in: everything one attempt changes, in one transaction.

A sign-in attempt used to be a string of small transactions (consume the
code, read the user, write the audit record, record the new session); on
SQLite each costs a write lock, a thread hop and a commit. Here each attempt
is one short ``BEGIN IMMEDIATE … COMMIT`` (plus the limiter's own hit when
the limiter lives in the database), with statements built once.

The token row of the new session is written in the same transaction as the
code is consumed: the caller prepares its ``jti`` and expiry up front
(:class:`SessionRow`) and signs the JWT only after this commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Connection, bindparam, case, insert, literal, select, update

from keystile.store.audit import AuditEvent, insert_event
from keystile.store.database import Database, in_thread
from keystile.store.tables import tokens, users
from keystile.store.users import USER_COLUMNS, User, user_from_row


@dataclass(frozen=True, slots=True)
class SessionRow:
    """The stored half of an access token that is about to be issued."""

    jti: str
    purpose: str
    expires_at: datetime


_USER_BY_EMAIL = select(*USER_COLUMNS).where(users.c.email == bindparam("email"))

_INSERT_TOKEN = insert(tokens).values(
    jti=bindparam("jti"),
    purpose=bindparam("purpose"),
    subject=bindparam("subject"),
    created_at=bindparam("created_at"),
    expires_at=bindparam("expires_at"),
    revoked_at=None,
    extra=None,
)

_REVOKE_LIVE = (
    update(tokens)
    .where(
        tokens.c.subject == bindparam("live_subject"),
        tokens.c.purpose == bindparam("live_purpose"),
        tokens.c.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("revoked_now"))
)


def _insert_token(
    conn: Connection, *, jti: str, purpose: str, subject: str, now: datetime, expires: datetime
) -> None:
    conn.execute(
        _INSERT_TOKEN,
        {
            "jti": jti,
            "purpose": purpose,
            "subject": subject,
            "created_at": now,
            "expires_at": expires,
        },
    )


def _user_by_email(conn: Connection, email: str) -> User | None:
    row = conn.execute(_USER_BY_EMAIL, {"email": email}).first()
    return user_from_row(row) if row is not None else None


def _consume_code(
    conn: Connection,
    code_ids: Sequence[str],
    *,
    purpose: str,
    subject: str,
    now: datetime,
    max_failures: int,
    single_use: bool,
) -> bool:
    """Use up a matching live code, or count a miss against the subject's live codes.

    A hit is one ``UPDATE … WHERE revoked_at IS NULL`` checked by row count,
    so of any number of parallel attempts with one code exactly one wins. A
    miss adds one to ``failed_attempts`` of the subject's live codes and
    burns (revokes) each that reaches ``max_failures``.
    """
    live = (
        tokens.c.purpose == purpose,
        tokens.c.subject == subject,
        tokens.c.revoked_at.is_(None),
        tokens.c.expires_at > now,
    )
    match = (*live, tokens.c.jti.in_(list(code_ids)), tokens.c.failed_attempts < max_failures)
    if single_use:
        hit = conn.execute(update(tokens).where(*match).values(revoked_at=now)).rowcount
    else:
        hit = len(conn.execute(select(tokens.c.jti).where(*match)).all())
    if hit:
        return True
    attempts = tokens.c.failed_attempts + 1
    burned_at = literal(now, tokens.c.revoked_at.type)
    conn.execute(
        update(tokens)
        .where(*live)
        .values(
            failed_attempts=attempts,
            revoked_at=case((attempts >= max_failures, burned_at), else_=None),
        )
    )
    return False


class SignInStore:
    """One-transaction writes for the sign-in paths of the strategies."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @in_thread
    def store_code(
        self,
        *,
        identity: str,
        code_id: str,
        purpose: str,
        now: datetime,
        expires_at: datetime,
        audit: AuditEvent,
        deliver_to_unknown: bool,
    ) -> tuple[User | None, bool]:
        """Replace the identity's outstanding code and audit the request.

        Returns the user (or ``None``) and whether the code should be sent:
        to a known user, or to anyone when registration is on. The audit
        record's ``success`` and ``subject`` are filled in here.
        """
        with self.db.write() as conn:
            user = _user_by_email(conn, identity)
            conn.execute(
                _REVOKE_LIVE,
                {"live_subject": identity, "live_purpose": purpose, "revoked_now": now},
            )
            _insert_token(
                conn, jti=code_id, purpose=purpose, subject=identity, now=now, expires=expires_at
            )
            deliver = user is not None or deliver_to_unknown
            insert_event(
                conn,
                replace(audit, success=deliver, subject=user.subject if user else None),
            )
        return user, deliver

    @in_thread
    def redeem_code(
        self,
        *,
        identity: str,
        code_ids: Sequence[str],
        purpose: str,
        now: datetime,
        max_failures: int,
        single_use: bool,
        register: bool,
        session: SessionRow | None,
        audit: AuditEvent,
    ) -> User | None:
        """Consume a code and, on success, record the new session; audit either way.

        With ``register``, a correct code for an identity without an account
        creates the user in the same transaction; a wrong one creates nothing.
        """
        with self.db.write() as conn:
            matched = _consume_code(
                conn,
                code_ids,
                purpose=purpose,
                subject=identity,
                now=now,
                max_failures=max_failures,
                single_use=single_use,
            )
            user = _user_by_email(conn, identity) if matched else None
            if matched and user is None and register:
                user = User(id=uuid.uuid4(), email=identity, created_at=now, updated_at=now)
                conn.execute(
                    insert(users).values(
                        id=user.id,
                        email=identity,
                        password_hash=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
            insert_event(
                conn,
                replace(audit, success=user is not None, subject=user.subject if user else None),
            )
            if user is not None and session is not None:
                _insert_token(
                    conn,
                    jti=session.jti,
                    purpose=session.purpose,
                    subject=user.subject,
                    now=now,
                    expires=session.expires_at,
                )
        return user

    @in_thread
    def finish(
        self, *, user: User | None, session: SessionRow | None, audit: AuditEvent, now: datetime
    ) -> None:
        """Audit an attempt and, when it succeeded, record its session: one transaction."""
        with self.db.write() as conn:
            insert_event(conn, audit)
            if user is not None and session is not None:
                _insert_token(
                    conn,
                    jti=session.jti,
                    purpose=session.purpose,
                    subject=user.subject,
                    now=now,
                    expires=session.expires_at,
                )
