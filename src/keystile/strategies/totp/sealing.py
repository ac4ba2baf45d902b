"""TOTP secrets sealed at rest (pure): AES-GCM bound to the user they belong to.

A thin layer over :mod:`keystile.crypto.sealing` that fixes the associated
data to ``totp:<user id>``: a sealed secret copied into another user's row
does not open, so a database write (or a restored backup row) cannot hand one
user's authenticator to another. The sealing key's id travels with the value
so rotation can find rows under older keys without opening them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from keystile.crypto.keyring import KeyRing
from keystile.crypto.sealing import seal, unseal


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """A sealed TOTP secret and the id of the key that sealed it."""

    value: str
    key_id: str


def sealing_context(user_id: uuid.UUID) -> str:
    """The associated data of ``user_id``'s TOTP secrets."""
    return f"totp:{user_id}"


def seal_secret(ring: KeyRing, secret: bytes, *, user_id: uuid.UUID) -> SealedSecret:
    """Seal ``secret`` for ``user_id`` under the ring's newest key."""
    return SealedSecret(
        value=seal(ring, secret, context=sealing_context(user_id)), key_id=ring.current.kid
    )


def unseal_secret(ring: KeyRing, sealed: str, *, user_id: uuid.UUID) -> bytes:
    """Open a secret sealed for ``user_id`` with whichever ring key sealed it.

    Raises:
        keystile.crypto.sealing.UnsealError: sealed for another user, under a
            key no longer in the ring, malformed or tampered with.
    """
    return unseal(ring, sealed, context=sealing_context(user_id))


def reseal_secret(ring: KeyRing, sealed: str, *, user_id: uuid.UUID) -> SealedSecret:
    """The same secret sealed again under the ring's newest key (for key rotation).

    Raises:
        keystile.crypto.sealing.UnsealError: as :func:`unseal_secret`.
    """
    return seal_secret(ring, unseal_secret(ring, sealed, user_id=user_id), user_id=user_id)
