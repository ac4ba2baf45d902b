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

import functools
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import BigInteger, bindparam, case, delete, func, insert, select, update

from keystile.errors import TooManyAttemptsError
from keystile.store.audit import BLOCKED_SUFFIX, AuditEvent, insert_event
from keystile.store.database import Database, in_thread
from keystile.store.prepared import Executor, Prepared
from keystile.store.tables import tokens, users
from keystile.store.types import UTCDateTime
from keystile.store.users import USER_COLUMNS, User, user_from_row

Admission = Callable[[Executor], int | None]
"""The first step of a sign-in transaction: count the attempt; ``None`` to go on,
or the seconds a refused caller must wait (see ``DeferredHits.admit``)."""


@dataclass(frozen=True, slots=True)
class SessionRow:
    """The stored half of an access token that is about to be issued."""

    jti: str
    purpose: str
    expires_at: datetime


_USER_BY_EMAIL = Prepared(select(*USER_COLUMNS).where(users.c.email == bindparam("email")))

_USER_ID_BY_EMAIL = Prepared(select(users.c.id).where(users.c.email == bindparam("email")))

_INSERT_USER = Prepared(
    insert(users).values(
        id=bindparam("id"),
        email=bindparam("email"),
        password_hash=None,
        created_at=bindparam("created_at"),
        updated_at=bindparam("updated_at"),
    )
)

_INSERT_TOKEN = Prepared(
    insert(tokens).values(
        jti=bindparam("jti"),
        purpose=bindparam("purpose"),
        subject=bindparam("subject"),
        created_at=bindparam("created_at"),
        expires_at=bindparam("expires_at"),
        revoked_at=None,
        extra=None,
    )
)

_REVOKE_LIVE = Prepared(
    update(tokens)
    .where(
        tokens.c.subject == bindparam("live_subject"),
        tokens.c.purpose == bindparam("live_purpose"),
        tokens.c.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("revoked_now"))
)

#: A code id is keyed on (strategy, identity, code), so the same code drawn again
#: for one identity (likely with ``digits_only`` and a short length) has the id
#: of an earlier, by now revoked, row: that row goes before the new one is
#: inserted, or the primary key would turn the request into a 500.
_DROP_REDRAWN = Prepared(
    delete(tokens).where(
        tokens.c.jti == bindparam("jti"),
        tokens.c.subject == bindparam("subject"),
        tokens.c.purpose == bindparam("purpose"),
    )
)

_LIVE_CODE = (
    tokens.c.purpose == bindparam("purpose"),
    tokens.c.subject == bindparam("subject"),
    tokens.c.revoked_at.is_(None),
    tokens.c.expires_at > bindparam("now", type_=UTCDateTime()),
)

_ATTEMPTS = tokens.c.failed_attempts + 1

_IDENTITY_LOCK = Prepared(
    select(func.pg_advisory_xact_lock(bindparam("identity_lock", type_=BigInteger())))
)


def identity_lock_id(identity: str) -> int:
    """The signed 64-bit PostgreSQL advisory-lock id of ``identity``'s sign-in writes.

    From SHA-256, so every process derives the same id; the prefix keeps it
    apart from the rate limiter's key locks. Two identities that collide
    merely queue behind each other.
    """
    digest = hashlib.sha256(b"keystile:identity:" + identity.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_identity(conn: Executor, identity: str) -> None:
    """Serialise the write transactions of one identity; the first step of each.

    Why: under PostgreSQL's READ COMMITTED, two transactions that each
    "revoke the live codes, insert a new one" see only committed rows, so a
    burst of requests left several live codes; likewise a count of earlier
    failures misses those still in flight. A transaction-scoped advisory lock
    per identity makes them take turns (other identities stay free) and is
    released at commit or rollback. SQLite needs nothing: ``BEGIN IMMEDIATE``
    already gives every write transaction the database to itself. Taken
    before any rate-limit key lock, so every transaction locks in one order.
    """
    if conn.dialect.name == "postgresql":
        _IDENTITY_LOCK.first(conn, {"identity_lock": identity_lock_id(identity)})


#: A miss: one more failure on each of the subject's live codes, burning those at the limit.
_COUNT_MISS = Prepared(
    update(tokens)
    .where(*_LIVE_CODE)
    .values(
        failed_attempts=_ATTEMPTS,
        revoked_at=case(
            (bindparam("max_failures") <= _ATTEMPTS, bindparam("burn_at", type_=UTCDateTime())),
            else_=None,
        ),
    )
)


@functools.cache
def _code_match(candidates: int, single_use: bool) -> Prepared:
    """Use up (or, not single use, find) a live code among ``candidates`` ids."""
    match = (
        *_LIVE_CODE,
        tokens.c.jti.in_([bindparam(f"id{index}") for index in range(candidates)]),
        tokens.c.failed_attempts < bindparam("max_failures"),
    )
    if single_use:
        return Prepared(
            update(tokens)
            .where(*match)
            .values(revoked_at=bindparam("used_at", type_=UTCDateTime()))
        )
    return Prepared(select(tokens.c.jti).where(*match).limit(1))


def _insert_token(
    conn: Executor, *, jti: str, purpose: str, subject: str, now: datetime, expires: datetime
) -> None:
    _INSERT_TOKEN.execute(
        conn,
        {
            "jti": jti,
            "purpose": purpose,
            "subject": subject,
            "created_at": now,
            "expires_at": expires,
        },
    )


def _insert_session(
    conn: Executor, user: User | None, session: SessionRow | None, now: datetime
) -> None:
    """Record the session's token row when the attempt succeeded and one was prepared."""
    if user is not None and session is not None:
        _insert_token(
            conn,
            jti=session.jti,
            purpose=session.purpose,
            subject=user.subject,
            now=now,
            expires=session.expires_at,
        )


def _user_by_email(conn: Executor, email: str) -> User | None:
    row = _USER_BY_EMAIL.first(conn, {"email": email})
    return user_from_row(row) if row is not None else None


def _register(conn: Executor, email: str, now: datetime) -> User:
    user = User(id=uuid.uuid4(), email=email, created_at=now, updated_at=now)
    _INSERT_USER.execute(
        conn, {"id": user.id, "email": email, "created_at": now, "updated_at": now}
    )
    return user


def _consume_code(
    conn: Executor,
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
    values: dict[str, object] = {
        "purpose": purpose,
        "subject": subject,
        "now": now,
        "max_failures": max_failures,
        "used_at": now,
        "burn_at": now,
    }
    values.update({f"id{index}": code_id for index, code_id in enumerate(code_ids)})
    statement = _code_match(len(code_ids), single_use)
    if single_use:
        hit = statement.execute(conn, values) > 0
    else:
        hit = statement.first(conn, values) is not None
    if hit:
        return True
    _COUNT_MISS.execute(conn, values)
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
        admit: Admission | None = None,
    ) -> tuple[str | None, bool]:
        """Replace the identity's outstanding code and audit the request.

        Returns the user's subject (or ``None``) and whether the code should
        be sent: to a known user, or to anyone when registration is on. The
        audit record's ``success`` and ``subject`` are filled in here. Only
        the user's id is read, so a known identity costs no more than an
        unknown one (the answer's timing must not tell them apart).
        ``admit`` runs first, as in :meth:`redeem_code`: if it refuses, no
        code is stored and the request is audited as blocked. The identity's
        writes take turns (:func:`lock_identity`), so however many requests
        run at once exactly one live code remains.

        Raises:
            TooManyAttemptsError: ``admit`` refused the request.
        """
        with self.db.driver_write() as conn:
            lock_identity(conn, identity)
            wait = admit(conn) if admit is not None else None
            if wait is not None:
                insert_event(conn, replace(audit, action=audit.action + BLOCKED_SUFFIX))
            else:
                found = _USER_ID_BY_EMAIL.first(conn, {"email": identity})
                subject = str(found[0]) if found is not None else None
                _REVOKE_LIVE.execute(
                    conn,
                    {"live_subject": identity, "live_purpose": purpose, "revoked_now": now},
                )
                _DROP_REDRAWN.execute(
                    conn, {"jti": code_id, "subject": identity, "purpose": purpose}
                )
                _insert_token(
                    conn,
                    jti=code_id,
                    purpose=purpose,
                    subject=identity,
                    now=now,
                    expires=expires_at,
                )
                deliver = subject is not None or deliver_to_unknown
                insert_event(conn, replace(audit, success=deliver, subject=subject))
        if wait is not None:
            raise TooManyAttemptsError(retry_after=wait)
        return subject, deliver

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
        admit: Admission | None = None,
    ) -> User | None:
        """Consume a code and, on success, record the new session; audit either way.

        With ``register``, a correct code for an identity without an account
        creates the user in the same transaction; a wrong one creates nothing.
        ``admit`` runs first in the transaction (a brute-force limit's hits);
        if it answers a wait, nothing is verified, the attempt is audited as
        blocked, and :class:`TooManyAttemptsError` is raised after the commit.

        Raises:
            TooManyAttemptsError: ``admit`` refused the attempt.
        """

        def once() -> User | None:
            user: User | None = None
            with self.db.driver_write() as conn:
                wait = admit(conn) if admit is not None else None
                if wait is None and _consume_code(
                    conn,
                    code_ids,
                    purpose=purpose,
                    subject=identity,
                    now=now,
                    max_failures=max_failures,
                    single_use=single_use,
                ):
                    user = _user_by_email(conn, identity) or (
                        _register(conn, identity, now) if register else None
                    )
                if wait is not None:
                    event = replace(audit, action=audit.action + BLOCKED_SUFFIX, success=False)
                else:
                    subject = user.subject if user else None
                    event = replace(audit, success=user is not None, subject=subject)
                insert_event(conn, event)
                _insert_session(conn, user, session, now)
            if wait is not None:
                raise TooManyAttemptsError(retry_after=wait)
            return user

        try:
            return once()
        except self.db.integrity_errors:
            if not register:
                raise
            # Concurrent first sign-ins of one new identity (a reusable code, on
            # PostgreSQL) can all miss the user and insert it; the losers' whole
            # transactions rolled back. Once more, they find the winner's user.
            return once()

    @in_thread
    def finish(
        self, *, user: User | None, session: SessionRow | None, audit: AuditEvent, now: datetime
    ) -> None:
        """Audit an attempt and, when it succeeded, record its session: one transaction."""
        with self.db.driver_write() as conn:
            insert_event(conn, audit)
            _insert_session(conn, user, session, now)
