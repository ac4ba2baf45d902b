"""Pending password registrations: a password waits here until its address is proved.

A registration stores the new password's hash on a token row (purpose
``password_registration``, subject the normalised email, id the keyed hash of
the confirmation code mailed to that address). Only the code's holder can
move the hash onto the user, so nobody can pre-register someone else's
address with a password of their own. Functions run inside the caller's
transaction (see :mod:`keystile.store.tokens`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, update

from keystile.store import tokens
from keystile.store.prepared import Executor, Prepared
from keystile.store.tables import tokens as token_rows
from keystile.store.types import UTCDateTime

PURPOSE = "password_registration"


def replace_pending(
    conn: Executor,
    *,
    identity: str,
    code_id: str,
    password_hash: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    """Make ``code_id`` the identity's only live pending registration."""
    tokens.replace_code(
        conn,
        jti=code_id,
        purpose=PURPOSE,
        subject=identity,
        now=now,
        expires_at=expires_at,
        extra={"password_hash": password_hash},
    )


@functools.cache
def _consume(candidates: int) -> Prepared:
    return Prepared(
        update(token_rows)
        .where(
            token_rows.c.jti.in_([bindparam(f"id{index}") for index in range(candidates)]),
            token_rows.c.purpose == PURPOSE,
            token_rows.c.subject == bindparam("subject"),
            token_rows.c.revoked_at.is_(None),
            token_rows.c.expires_at > bindparam("now", type_=UTCDateTime()),
        )
        .values(revoked_at=bindparam("used_at", type_=UTCDateTime()))
        .returning(token_rows.c.extra)
    )


def consume_pending(
    conn: Executor, *, identity: str, code_ids: Sequence[str], now: datetime
) -> str | None:
    """Use up a live pending registration; the password hash it kept, or ``None``.

    One conditional ``UPDATE … RETURNING``: of parallel confirmations exactly one wins.
    """
    values: dict[str, object] = {"subject": identity, "now": now, "used_at": now}
    values.update({f"id{index}": code_id for index, code_id in enumerate(code_ids)})
    row = _consume(len(code_ids)).first(conn, values)
    if row is None or not isinstance(row[0], dict):
        return None
    return str(row[0]["password_hash"])
