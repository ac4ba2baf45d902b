"""The OAuth signing-key repository: private keys sealed at rest, public halves published.

A key signs from its creation until a newer one is created (``retired_at``),
and is published until ``publish_until``: the expiry of the last token it
may have signed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, case, insert, or_, select, update

from keystile.store.prepared import Executor, Prepared
from keystile.store.tables import oauth_signing_keys
from keystile.store.types import UTCDateTime


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A signing key as stored (``sealed_key`` is the sealed PKCS#8 PEM)."""

    kid: str
    algorithm: str
    sealed_key: str = field(repr=False)
    created_at: datetime
    retired_at: datetime | None


_COLUMNS = (
    oauth_signing_keys.c.kid,
    oauth_signing_keys.c.algorithm,
    oauth_signing_keys.c.sealed_key,
    oauth_signing_keys.c.created_at,
    oauth_signing_keys.c.retired_at,
)

_INSERT = Prepared(
    insert(oauth_signing_keys).values(
        kid=bindparam("kid"),
        algorithm=bindparam("algorithm"),
        sealed_key=bindparam("sealed_key"),
        created_at=bindparam("created_at"),
        retired_at=None,
        publish_until=None,
    )
)
_SIGNING = Prepared(
    select(*_COLUMNS)
    .where(oauth_signing_keys.c.retired_at.is_(None))
    .order_by(oauth_signing_keys.c.created_at.desc())
    .limit(1)
)
_PUBLISHED = Prepared(
    select(*_COLUMNS)
    .where(
        or_(
            oauth_signing_keys.c.retired_at.is_(None),
            oauth_signing_keys.c.publish_until > bindparam("now", type_=UTCDateTime()),
        )
    )
    # The signing key first, then the retired ones, newest first (created_at alone may tie).
    .order_by(
        case((oauth_signing_keys.c.retired_at.is_(None), 0), else_=1),
        oauth_signing_keys.c.retired_at.desc(),
        oauth_signing_keys.c.created_at.desc(),
    )
)
_RETIRE = Prepared(
    update(oauth_signing_keys)
    .where(oauth_signing_keys.c.retired_at.is_(None))
    .values(
        retired_at=bindparam("retired_at", type_=UTCDateTime()),
        publish_until=bindparam("publish_until", type_=UTCDateTime()),
    )
)


def _stored(row: tuple[object, ...]) -> StoredKey:
    kid, algorithm, sealed, created_at, retired_at = row
    assert isinstance(created_at, datetime)
    return StoredKey(
        kid=str(kid),
        algorithm=str(algorithm),
        sealed_key=str(sealed),
        created_at=created_at,
        retired_at=retired_at if isinstance(retired_at, datetime) else None,
    )


def signing_key(conn: Executor) -> StoredKey | None:
    """The key that signs now (the newest not retired), or ``None`` before the first."""
    row = _SIGNING.first(conn)
    return _stored(row) if row is not None else None


def published_keys(conn: Executor, *, now: datetime) -> Sequence[StoredKey]:
    """The keys to publish: the signing key and every retired key still within its window."""
    return [_stored(row) for row in _PUBLISHED.all(conn, {"now": now})]


def retire_signing(conn: Executor, *, now: datetime, publish_until: datetime) -> int:
    """Retire the signing key(s), published until ``publish_until``; how many."""
    return _RETIRE.execute(conn, {"retired_at": now, "publish_until": publish_until})


def insert_key(conn: Executor, *, kid: str, algorithm: str, sealed_key: str, now: datetime) -> None:
    """Store a new signing key (it signs from now on; retire the old one first)."""
    _INSERT.execute(
        conn, {"kid": kid, "algorithm": algorithm, "sealed_key": sealed_key, "created_at": now}
    )
