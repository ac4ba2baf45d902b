"""Asymmetric signing keys of the token endpoint: generated on first use, rotated, published.

The private keys are sealed at rest (:mod:`keystile.crypto.sealing`, the
encryption ring, bound to the ``kid``). The newest key that is not retired
signs; ``keystile keys rotate --signing`` creates a new one and retires the
old, which stays in the JWKS for :data:`PUBLISH_WINDOW` (the longest a token
it signed can live), so tokens issued before the rotation keep verifying.
Every process reads the signing key from the database per token, so a
rotation takes effect everywhere at once; unsealed keys are kept by ``kid``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from keystile.clock import Clock
from keystile.crypto.keyring import KeyRing
from keystile.crypto.sealing import seal, unseal
from keystile.jose import SigningAlgorithm, SigningKey, generate_key, key_set
from keystile.store import oauth_keys
from keystile.store.database import Database
from keystile.store.locks import lock_identity
from keystile.store.oauth_keys import StoredKey
from keystile.store.prepared import Executor

#: How long a retired key stays published: the longest access or ID token lifetime
#: (``oauth_access_token_lifetime_seconds`` and a client's own are at most a day), and
#: a margin for clock skew.
PUBLISH_WINDOW: Final = timedelta(days=1, minutes=5)
_LOCK = "oauth:signing-key"


def _context(kid: str) -> str:
    return f"oauth-signing-key:{kid}"


class SigningKeys:
    """The signing key of new tokens, and the key set to publish."""

    def __init__(
        self, *, db: Database, encryption_keys: KeyRing, algorithm: SigningAlgorithm, clock: Clock
    ) -> None:
        self._db = db
        self._ring = encryption_keys
        self._algorithm: SigningAlgorithm = algorithm
        self._clock = clock
        self._opened: dict[str, SigningKey] = {}

    def _open(self, stored: StoredKey) -> SigningKey:
        key = self._opened.get(stored.kid)
        if key is None:
            pem = unseal(self._ring, stored.sealed_key, context=_context(stored.kid))
            algorithm: SigningAlgorithm = stored.algorithm  # type: ignore[assignment]
            key = SigningKey(kid=stored.kid, algorithm=algorithm, private_pem=pem)
            self._opened[stored.kid] = key
        return key

    async def current(self) -> SigningKey:
        """The key that signs now; the first one is generated (and stored) here."""
        stored = await self._db.query(oauth_keys.signing_key)
        if stored is None:
            stored = await self._db.transact(
                functools.partial(self._create, retire=False, now=self._clock.now())
            )
        return self._open(stored)

    async def rotate(self) -> tuple[SigningKey, Sequence[str]]:
        """A new signing key; the old one is retired and stays published for
        :data:`PUBLISH_WINDOW`. Returns the new key and the kids still published."""
        now = self._clock.now()
        stored = await self._db.transact(functools.partial(self._create, retire=True, now=now))
        published = await self._db.query(functools.partial(oauth_keys.published_keys, now=now))
        return self._open(stored), [key.kid for key in published]

    def _create(self, conn: Executor, *, retire: bool, now: datetime) -> StoredKey:
        lock_identity(conn, _LOCK)
        if not retire:
            existing = oauth_keys.signing_key(conn)
            if existing is not None:  # a parallel first use created it meanwhile
                return existing
        else:
            oauth_keys.retire_signing(conn, now=now, publish_until=now + PUBLISH_WINDOW)
        key = generate_key(self._algorithm)
        sealed = seal(self._ring, key.private_pem, context=_context(key.kid))
        oauth_keys.insert_key(
            conn, kid=key.kid, algorithm=key.algorithm, sealed_key=sealed, now=now
        )
        self._opened[key.kid] = key
        return StoredKey(
            kid=key.kid, algorithm=key.algorithm, sealed_key=sealed, created_at=now, retired_at=None
        )

    async def published(self) -> list[SigningKey]:
        """Every published key: the signing key (generated on first use) and the
        retired ones still within :data:`PUBLISH_WINDOW`."""
        now = self._clock.now()
        published = await self._db.query(functools.partial(oauth_keys.published_keys, now=now))
        if not published:
            await self.current()
            published = await self._db.query(functools.partial(oauth_keys.published_keys, now=now))
        return [self._open(stored) for stored in published]

    async def key_set(self) -> dict[str, Any]:
        """The JWK Set of every published key (RFC 7517 §5)."""
        return key_set(await self.published())
