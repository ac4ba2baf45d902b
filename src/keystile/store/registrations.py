"""Pending password registrations: a password waits here until its address is proved.

A registration stores the new password's hash on a token row (purpose
``password_registration``, subject the normalised email, id the keyed hash of
the confirmation code mailed to that address). Only the code's holder can
move the hash onto the user, so nobody can pre-register someone else's
address with a password of their own. Functions run inside the caller's
transaction (see :mod:`keystile.store.tokens`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from keystile.store import tokens
from keystile.store.prepared import Executor

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


def consume_pending(
    conn: Executor, *, identity: str, code_ids: Sequence[str], now: datetime
) -> str | None:
    """Use up a live pending registration; the password hash it kept, or ``None``.

    One conditional ``UPDATE … RETURNING``: of parallel confirmations exactly one wins.
    """
    extra = tokens.consume_token(conn, code_ids, purpose=PURPOSE, subject=identity, now=now)
    password_hash = extra.get("password_hash") if extra is not None else None
    return password_hash if isinstance(password_hash, str) else None
