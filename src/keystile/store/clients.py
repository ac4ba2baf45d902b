"""The OAuth client repository: registered clients, their secrets as keyed hashes.

Module-level functions run inside the caller's transaction; they hold no
policy (who may use which grant is decided in :mod:`keystile.oauth.clients`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select, update

from keystile.store.prepared import Executor, Prepared, Row
from keystile.store.tables import oauth_clients


@dataclass(frozen=True, slots=True)
class ClientRow:
    """A stored client (``secret_hash`` ``None``: a public client)."""

    client_id: str
    name: str
    secret_hash: str | None = field(repr=False)
    grant_types: tuple[str, ...]
    audience: str
    access_token_lifetime: int
    refresh_token_lifetime: int
    created_at: datetime


_COLUMNS = (
    oauth_clients.c.client_id,
    oauth_clients.c.name,
    oauth_clients.c.secret_hash,
    oauth_clients.c.grant_types,
    oauth_clients.c.audience,
    oauth_clients.c.access_token_lifetime,
    oauth_clients.c.refresh_token_lifetime,
    oauth_clients.c.created_at,
)

_INSERT = Prepared(
    insert(oauth_clients).values(
        client_id=bindparam("client_id"),
        name=bindparam("name"),
        secret_hash=bindparam("secret_hash"),
        grant_types=bindparam("grant_types"),
        audience=bindparam("audience"),
        access_token_lifetime=bindparam("access_token_lifetime"),
        refresh_token_lifetime=bindparam("refresh_token_lifetime"),
        created_at=bindparam("created_at"),
    )
)
_FIND = Prepared(select(*_COLUMNS).where(oauth_clients.c.client_id == bindparam("client_id")))
_LIST = Prepared(select(*_COLUMNS).order_by(oauth_clients.c.created_at, oauth_clients.c.name))
_SET_SECRET = Prepared(
    update(oauth_clients)
    .where(oauth_clients.c.client_id == bindparam("client_id"))
    .values(secret_hash=bindparam("secret_hash"))
)
_DELETE = Prepared(delete(oauth_clients).where(oauth_clients.c.client_id == bindparam("client_id")))


def _row(row: Row) -> ClientRow:
    return ClientRow(
        client_id=row[0],
        name=row[1],
        secret_hash=row[2],
        grant_types=tuple(row[3] or ()),
        audience=row[4],
        access_token_lifetime=int(row[5]),
        refresh_token_lifetime=int(row[6]),
        created_at=row[7],
    )


def insert_client(conn: Executor, client: ClientRow) -> None:
    """Store a new client."""
    _INSERT.execute(
        conn,
        {
            "client_id": client.client_id,
            "name": client.name,
            "secret_hash": client.secret_hash,
            "grant_types": list(client.grant_types),
            "audience": client.audience,
            "access_token_lifetime": client.access_token_lifetime,
            "refresh_token_lifetime": client.refresh_token_lifetime,
            "created_at": client.created_at,
        },
    )


def find_client(conn: Executor, client_id: str) -> ClientRow | None:
    """The client with ``client_id``, or ``None``."""
    row = _FIND.first(conn, {"client_id": client_id})
    return _row(row) if row is not None else None


def list_clients(conn: Executor) -> Sequence[ClientRow]:
    """Every client, oldest first."""
    return [_row(row) for row in _LIST.all(conn)]


def set_secret_hash(conn: Executor, client_id: str, secret_hash: str) -> bool:
    """Replace a confidential client's secret hash; ``False`` if no such client."""
    return _SET_SECRET.execute(conn, {"client_id": client_id, "secret_hash": secret_hash}) == 1


def delete_client(conn: Executor, client_id: str) -> bool:
    """Delete a client; ``False`` if there was none."""
    return _DELETE.execute(conn, {"client_id": client_id}) == 1
