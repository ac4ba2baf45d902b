"""The token repository: sessions and short codes, each row found by its id.

A row is an issued access token (``jti`` random, so it can be revoked) or a
short code (``jti`` the keyed hash of the code, so the code is never
stored). The module-level functions run inside the caller's transaction, a
unit of work that a service or flow composes; the :class:`TokenStore`
methods are single statements in their own transaction, for the paths that
need nothing else.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, delete, exists, insert, select, update

from keystile.store.database import Database, in_thread
from keystile.store.locks import lock_identity
from keystile.store.prepared import Executor, Prepared
from keystile.store.tables import tokens, users
from keystile.store.types import UTCDateTime
from keystile.store.users import USER_COLUMNS, User, user_from_row

_INSERT = Prepared(
    insert(tokens).values(
        jti=bindparam("jti"),
        purpose=bindparam("purpose"),
        subject=bindparam("subject"),
        created_at=bindparam("created_at"),
        expires_at=bindparam("expires_at"),
        revoked_at=None,
        extra=bindparam("extra"),
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

_DROP = Prepared(
    delete(tokens).where(
        tokens.c.jti == bindparam("jti"),
        tokens.c.subject == bindparam("subject"),
        tokens.c.purpose == bindparam("purpose"),
    )
)

_LIVE = (
    tokens.c.purpose == bindparam("purpose"),
    tokens.c.subject == bindparam("subject"),
    tokens.c.revoked_at.is_(None),
    tokens.c.expires_at > bindparam("now", type_=UTCDateTime()),
)

_ATTEMPTS = tokens.c.failed_attempts + 1


def _count_failure(*where: Any) -> Prepared:
    """One more failure on each row matching ``where``; a row at ``max_failures`` is burned."""
    return Prepared(
        update(tokens)
        .where(*where)
        .values(
            failed_attempts=_ATTEMPTS,
            revoked_at=case(
                (
                    bindparam("max_failures") <= _ATTEMPTS,
                    bindparam("burn_at", type_=UTCDateTime()),
                ),
                else_=None,
            ),
        )
    )


#: A miss: one more failure on each of the subject's live codes, burning those at the limit.
_COUNT_MISS = _count_failure(*_LIVE)


def insert_token(
    conn: Executor,
    *,
    jti: str,
    purpose: str,
    subject: str,
    now: datetime,
    expires_at: datetime,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Record an issued token or code."""
    _INSERT.execute(
        conn,
        {
            "jti": jti,
            "purpose": purpose,
            "subject": subject,
            "created_at": now,
            "expires_at": expires_at,
            "extra": dict(extra) if extra else None,
        },
    )


def revoke_live(conn: Executor, *, subject: str, purpose: str, now: datetime) -> int:
    """Revoke every live token of ``purpose`` for ``subject``; how many were live."""
    return _REVOKE_LIVE.execute(
        conn, {"live_subject": subject, "live_purpose": purpose, "revoked_now": now}
    )


def drop_token(conn: Executor, *, jti: str, subject: str, purpose: str) -> None:
    """Delete one row outright.

    For a code drawn again for one identity: its id is keyed on (strategy,
    identity, code), so it equals an earlier, by now revoked, row's id, and
    that row must go before the new one is inserted.
    """
    _DROP.execute(conn, {"jti": jti, "subject": subject, "purpose": purpose})


def replace_code(
    conn: Executor,
    *,
    jti: str,
    purpose: str,
    subject: str,
    now: datetime,
    expires_at: datetime,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Make ``jti`` the subject's only live code of ``purpose``.

    The caller holds the subject's lock (:func:`~keystile.store.locks.lock_identity`),
    so concurrent replaces leave exactly one live code.
    """
    revoke_live(conn, subject=subject, purpose=purpose, now=now)
    drop_token(conn, jti=jti, subject=subject, purpose=purpose)
    insert_token(
        conn,
        jti=jti,
        purpose=purpose,
        subject=subject,
        now=now,
        expires_at=expires_at,
        extra=extra,
    )


@functools.cache
def _code_match(candidates: int, single_use: bool) -> Prepared:
    """Use up (or, not single use, find) a live code among ``candidates`` ids."""
    match = (
        *_LIVE,
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


def consume_code(
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
    so of any number of parallel attempts with one code exactly one wins (not
    single use: the code is only found). A miss adds one to
    ``failed_attempts`` of the subject's live codes and burns (revokes) each
    that reaches ``max_failures``.
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
    if not hit:
        _COUNT_MISS.execute(conn, values)
    return hit


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


_FIND_LIVE = Prepared(
    select(tokens.c.subject, tokens.c.extra, tokens.c.expires_at).where(
        tokens.c.jti == bindparam("jti"),
        tokens.c.purpose == bindparam("purpose"),
        tokens.c.revoked_at.is_(None),
        tokens.c.expires_at > bindparam("now", type_=UTCDateTime()),
        tokens.c.failed_attempts < bindparam("max_failures"),
    )
)

_USE = Prepared(
    update(tokens)
    .where(
        tokens.c.jti == bindparam("jti"),
        tokens.c.purpose == bindparam("purpose"),
        tokens.c.revoked_at.is_(None),
        tokens.c.expires_at > bindparam("now", type_=UTCDateTime()),
        tokens.c.failed_attempts < bindparam("max_failures"),
    )
    .values(revoked_at=bindparam("used_at", type_=UTCDateTime()))
)

_FAIL = _count_failure(
    tokens.c.jti == bindparam("jti"),
    tokens.c.purpose == bindparam("purpose"),
    tokens.c.revoked_at.is_(None),
)


def find_live_token(
    conn: Executor, *, jti: str, purpose: str, now: datetime, max_failures: int
) -> tuple[str, dict[str, Any], datetime] | None:
    """The subject, extra and expiry of a live token (unrevoked, unexpired, not burned)."""
    row = _FIND_LIVE.first(
        conn, {"jti": jti, "purpose": purpose, "now": now, "max_failures": max_failures}
    )
    if row is None:
        return None
    subject, extra, expires_at = row
    return str(subject), dict(extra or {}), expires_at


def use_token(conn: Executor, *, jti: str, purpose: str, now: datetime, max_failures: int) -> bool:
    """Use up a live token: one conditional ``UPDATE`` checked by row count, so of
    parallel uses exactly one wins."""
    values = {"jti": jti, "purpose": purpose, "now": now, "used_at": now}
    return _USE.execute(conn, {**values, "max_failures": max_failures}) == 1


def count_token_failure(
    conn: Executor, *, jti: str, purpose: str, now: datetime, max_failures: int
) -> None:
    """One more failure against a token; it is burned (revoked) at ``max_failures``."""
    _FAIL.execute(
        conn, {"jti": jti, "purpose": purpose, "max_failures": max_failures, "burn_at": now}
    )


_REVOKE_ONE = Prepared(
    update(tokens)
    .where(tokens.c.jti == bindparam("jti"), tokens.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("revoked_at", type_=UTCDateTime()))
)


def revoke_token(conn: Executor, *, jti: str, now: datetime) -> bool:
    """Revoke one token inside the caller's transaction; ``True`` if it was live."""
    return _REVOKE_ONE.execute(conn, {"jti": jti, "revoked_at": now}) == 1


def _live_among(candidates: int) -> tuple[Any, ...]:
    """A live row of ``purpose`` for ``subject`` whose id is one of ``candidates`` bound ids."""
    return (
        tokens.c.jti.in_([bindparam(f"id{index}") for index in range(candidates)]),
        tokens.c.purpose == bindparam("purpose"),
        tokens.c.subject == bindparam("subject"),
        tokens.c.revoked_at.is_(None),
        tokens.c.expires_at > bindparam("now", type_=UTCDateTime()),
    )


@functools.cache
def _find_live(candidates: int) -> Prepared:
    return Prepared(select(tokens.c.extra).where(*_live_among(candidates)).limit(1))


@functools.cache
def _consume_live(candidates: int) -> Prepared:
    return Prepared(
        update(tokens)
        .where(*_live_among(candidates))
        .values(revoked_at=bindparam("used_at", type_=UTCDateTime()))
        .returning(tokens.c.extra)
    )


def _token_values(
    jti_candidates: Sequence[str], purpose: str, subject: str, now: datetime
) -> dict[str, object]:
    values: dict[str, object] = {"purpose": purpose, "subject": subject, "now": now, "used_at": now}
    values.update({f"id{index}": jti for index, jti in enumerate(jti_candidates)})
    return values


def live_token_extra(
    conn: Executor, jti_candidates: Sequence[str], *, purpose: str, subject: str, now: datetime
) -> dict[str, Any] | None:
    """The ``extra`` of a live token of ``purpose`` for ``subject`` among ``jti_candidates``
    (``{}`` if it has none), or ``None`` when there is no such token. Changes nothing.

    For a token that must survive a failed attempt (a TOTP setup token
    outlives a wrong code): look first, and use it up with
    :func:`consume_token` only once the attempt succeeded.
    """
    if not jti_candidates:
        return None
    row = _find_live(len(jti_candidates)).first(
        conn, _token_values(jti_candidates, purpose, subject, now)
    )
    if row is None:
        return None
    return dict(row[0]) if isinstance(row[0], dict) else {}


def consume_token(
    conn: Executor, jti_candidates: Sequence[str], *, purpose: str, subject: str, now: datetime
) -> dict[str, Any] | None:
    """Use up a live token of ``purpose`` for ``subject`` among ``jti_candidates``;
    its ``extra`` (``{}`` if it has none), or ``None`` when there was none to use.

    One conditional ``UPDATE … SET revoked_at = :now WHERE revoked_at IS NULL
    … RETURNING extra``: of parallel uses of one token exactly one gets a row.
    """
    if not jti_candidates:
        return None
    row = _consume_live(len(jti_candidates)).first(
        conn, _token_values(jti_candidates, purpose, subject, now)
    )
    if row is None:
        return None
    return dict(row[0]) if isinstance(row[0], dict) else {}
