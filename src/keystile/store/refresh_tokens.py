"""The refresh-token repository: opaque tokens stored as keyed hashes, in families.

Rotation is one conditional ``UPDATE … WHERE used_at IS NULL AND revoked_at
IS NULL`` checked by row count, so of parallel uses of one token exactly one
wins; what a loser or a replay means (the family is revoked) is the
caller's policy, in :mod:`keystile.oauth.refresh`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from keystile.store.prepared import Executor, Prepared
from keystile.store.tables import oauth_refresh_tokens as table
from keystile.store.tables import tokens
from keystile.store.types import UTCDateTime


@dataclass(frozen=True, slots=True)
class RefreshRow:
    """A stored refresh token (without the token)."""

    family_id: str
    client_id: str
    user_id: uuid.UUID
    scope: str
    sign_in: Mapping[str, Any]
    expires_at: datetime


_INSERT = Prepared(
    insert(table).values(
        id=bindparam("id"),
        family_id=bindparam("family_id"),
        client_id=bindparam("client_id"),
        user_id=bindparam("user_id"),
        scope=bindparam("scope"),
        sign_in=bindparam("sign_in"),
        access_jti=bindparam("access_jti"),
        created_at=bindparam("created_at"),
        expires_at=bindparam("expires_at"),
        used_at=None,
        revoked_at=None,
    )
)
_USE = Prepared(
    update(table)
    .where(
        table.c.id == bindparam("id"),
        table.c.used_at.is_(None),
        table.c.revoked_at.is_(None),
        table.c.expires_at > bindparam("now", type_=UTCDateTime()),
    )
    .values(used_at=bindparam("used_at", type_=UTCDateTime()))
    .returning(
        table.c.family_id,
        table.c.client_id,
        table.c.user_id,
        table.c.scope,
        table.c.sign_in,
        table.c.expires_at,
    )
)
_FAMILY_OF = Prepared(select(table.c.family_id).where(table.c.id == bindparam("id")))
_FAMILY_ACCESS = Prepared(
    select(table.c.access_jti).where(
        table.c.family_id == bindparam("family_id"), table.c.access_jti.is_not(None)
    )
)
_REVOKE_FAMILY = Prepared(
    update(table)
    .where(table.c.family_id == bindparam("family_id"), table.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("revoked_at", type_=UTCDateTime()))
)
_REVOKE_ACCESS = Prepared(
    update(tokens)
    .where(tokens.c.jti == bindparam("jti"), tokens.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("revoked_at", type_=UTCDateTime()))
)


def insert_refresh_token(
    conn: Executor,
    *,
    token_id: str,
    family_id: str,
    client_id: str,
    user_id: uuid.UUID,
    scope: str,
    sign_in: Mapping[str, Any],
    access_jti: str | None,
    now: datetime,
    expires_at: datetime,
) -> None:
    """Store a new refresh token under its keyed hash ``token_id``."""
    _INSERT.execute(
        conn,
        {
            "id": token_id,
            "family_id": family_id,
            "client_id": client_id,
            "user_id": user_id,
            "scope": scope,
            "sign_in": dict(sign_in),
            "access_jti": access_jti,
            "created_at": now,
            "expires_at": expires_at,
        },
    )


def use_refresh_token(conn: Executor, token_id: str, *, now: datetime) -> RefreshRow | None:
    """Use up a live refresh token (one conditional ``UPDATE``); its row, or ``None``
    when it is unknown, used, revoked or expired."""
    row = _USE.first(conn, {"id": token_id, "now": now, "used_at": now})
    if row is None:
        return None
    family_id, client_id, user_id, scope, sign_in, expires_at = row
    return RefreshRow(
        family_id=str(family_id),
        client_id=str(client_id),
        user_id=user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id)),
        scope=str(scope),
        sign_in=dict(sign_in or {}),
        expires_at=expires_at,
    )


def family_of(conn: Executor, token_id: str) -> str | None:
    """The family of a stored refresh token (live or not), or ``None`` if unknown."""
    row = _FAMILY_OF.first(conn, {"id": token_id})
    return str(row[0]) if row is not None else None


def revoke_family(conn: Executor, family_id: str, *, now: datetime) -> int:
    """Revoke every refresh token of ``family_id`` and the access tokens issued with
    them (their session rows); how many refresh tokens were live."""
    for (jti,) in _FAMILY_ACCESS.all(conn, {"family_id": family_id}):
        _REVOKE_ACCESS.execute(conn, {"jti": jti, "revoked_at": now})
    return _REVOKE_FAMILY.execute(conn, {"family_id": family_id, "revoked_at": now})
