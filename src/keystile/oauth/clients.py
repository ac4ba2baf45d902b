"""The OAuth client registry: create, list, rotate a secret, delete, authenticate.

A confidential client's secret (256 random bits) is shown once, at creation
or rotation, and stored as a keyed hash under the hashing ring's newest key;
any key of the ring verifies, so a hashing-key rotation keeps clients
working. A public client has no secret and may use only the grants it was
registered for, like every client (RFC 6749 §2.1, §3.2.1).
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from keystile.clock import Clock
from keystile.crypto.hashing import keyed_hash, keyed_hashes
from keystile.crypto.keyring import KeyRing
from keystile.errors import KeystileError, NotFoundError
from keystile.store import clients as store
from keystile.store.clients import ClientRow
from keystile.store.database import Database

PURPOSE = "oauth_client"
MAX_CREDENTIAL_INPUT = 256


class OAuthError(KeystileError):
    """An RFC 6749 §5.2 error: ``code`` is its ``error``, ``message`` its ``error_description``.

    ``mfa_token``: set on ``mfa_required`` (Auth0's extension of the error body).
    """

    def __init__(self, code: str, description: str, *, mfa_token: str | None = None) -> None:
        self.code = code
        self.mfa_token = mfa_token
        super().__init__(description)


def invalid_client() -> OAuthError:
    """The one answer for an unknown client or a wrong secret (RFC 6749 §5.2)."""
    return OAuthError("invalid_client", "Client authentication failed.")


@dataclass(frozen=True, slots=True)
class NewClient:
    """A created client and its secret (``None``: public), shown this once."""

    client: ClientRow
    secret: str | None = field(repr=False)


class ClientRegistry:
    """Registered OAuth clients."""

    def __init__(
        self,
        *,
        db: Database,
        hashing_keys: KeyRing,
        clock: Clock,
        audience: str,
        access_token_lifetime: int,
        refresh_token_lifetime: int,
    ) -> None:
        self._db = db
        self._ring = hashing_keys
        self._clock = clock
        self._audience = audience
        self._access_lifetime = access_token_lifetime
        self._refresh_lifetime = refresh_token_lifetime

    def _hash(self, client_id: str, secret: str) -> str:
        return keyed_hash(self._ring.current, PURPOSE, client_id, secret)

    async def create(
        self,
        name: str,
        *,
        grant_types: Sequence[str],
        public: bool = False,
        audience: str | None = None,
        access_token_lifetime: int | None = None,
        refresh_token_lifetime: int | None = None,
    ) -> NewClient:
        """Register a client allowed ``grant_types``; its secret is in the answer only."""
        client_id = secrets.token_urlsafe(18)
        secret = None if public else secrets.token_urlsafe(32)
        row = ClientRow(
            client_id=client_id,
            name=name,
            secret_hash=self._hash(client_id, secret) if secret is not None else None,
            grant_types=tuple(dict.fromkeys(grant_types)),
            audience=audience or self._audience,
            access_token_lifetime=access_token_lifetime or self._access_lifetime,
            refresh_token_lifetime=refresh_token_lifetime or self._refresh_lifetime,
            created_at=self._clock.now(),
        )
        await self._db.transact(functools.partial(store.insert_client, client=row))
        return NewClient(client=row, secret=secret)

    async def list(self) -> Sequence[ClientRow]:
        """Every client, oldest first (never a secret)."""
        return await self._db.query(store.list_clients)

    async def rotate_secret(self, client_id: str) -> str:
        """A new secret for a confidential client; the old one stops working at once.

        Raises:
            NotFoundError: no such client, or a public one (it has no secret).
        """
        client = await self._db.query(functools.partial(store.find_client, client_id=client_id))
        if client is None or client.secret_hash is None:
            raise NotFoundError("No confidential client has this id.")
        secret = secrets.token_urlsafe(32)
        hashed = self._hash(client_id, secret)
        await self._db.transact(
            functools.partial(store.set_secret_hash, client_id=client_id, secret_hash=hashed)
        )
        return secret

    async def delete(self, client_id: str) -> None:
        """Delete a client (its refresh tokens stop working: they name it).

        Raises:
            NotFoundError: no such client.
        """
        if not await self._db.transact(functools.partial(store.delete_client, client_id=client_id)):
            raise NotFoundError("No client has this id.")

    async def authenticate(
        self, client_id: str | None, secret: str | None, *, grant_type: str
    ) -> ClientRow:
        """The client of a token request, authenticated and allowed ``grant_type``.

        A confidential client must send its secret (``client_secret_post`` or
        ``client_secret_basic``; the edge extracts it); a public client must not
        claim one.

        Raises:
            OAuthError: ``invalid_client`` (unknown, wrong or missing secret) or
                ``unauthorized_client`` (the grant is not allowed to this client).
        """
        if not client_id or len(client_id) > MAX_CREDENTIAL_INPUT:
            raise invalid_client()
        client = await self._db.query(functools.partial(store.find_client, client_id=client_id))
        if client is None or not self._secret_matches(client, secret):
            raise invalid_client()
        if grant_type not in client.grant_types:
            raise OAuthError(
                "unauthorized_client", "The grant type is not allowed for this client."
            )
        return client

    async def find(self, client_id: str | None) -> ClientRow | None:
        """A client by id (no authentication: for ``/passwordless/start`` and ``/mfa/*``)."""
        if not client_id or len(client_id) > MAX_CREDENTIAL_INPUT:
            return None
        return await self._db.query(functools.partial(store.find_client, client_id=client_id))

    def _secret_matches(self, client: ClientRow, secret: str | None) -> bool:
        if client.secret_hash is None:
            return not secret
        if not secret or len(secret) > MAX_CREDENTIAL_INPUT:
            return False
        expected = client.secret_hash
        return any(
            hmac.compare_digest(candidate, expected)
            for candidate in keyed_hashes(self._ring, PURPOSE, client.client_id, secret)
        )
