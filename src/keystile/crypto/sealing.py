"""Sealing secrets at rest with AES-256-GCM.

A sealed value is ``v1.<kid>.<nonce>.<ciphertext>`` (URL-safe base64 parts).
The AES key is derived from the configured key with HKDF-SHA256, so any
high-entropy string works as configuration. ``context`` is bound as
associated data: a value sealed for one user or purpose cannot be moved to
another row and still open.
"""

from __future__ import annotations

import base64
import functools
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keystile.crypto.keyring import Key, KeyRing

_VERSION = "v1"


class UnsealError(ValueError):
    """The sealed value is malformed, was sealed under an unknown key, or was tampered with."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=64)
def _aes(secret: bytes) -> AESGCM:
    # Derived once per configured key (HKDF each time cost more than the AES itself);
    # bounded, and only ever holds keys of the process's own rings.
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"keystile/sealing/v1"
    ).derive(secret)
    return AESGCM(derived)


def _aes_key(key: Key) -> AESGCM:
    return _aes(key.secret.value)


def seal(ring: KeyRing, plaintext: bytes, *, context: str) -> str:
    """Encrypt ``plaintext`` under the ring's current key, bound to ``context``."""
    key = ring.current
    nonce = secrets.token_bytes(12)
    ciphertext = _aes_key(key).encrypt(nonce, plaintext, context.encode())
    return ".".join((_VERSION, key.kid, _b64(nonce), _b64(ciphertext)))


def unseal(ring: KeyRing, sealed: str, *, context: str) -> bytes:
    """Decrypt a value from :func:`seal` with whichever ring key sealed it.

    Raises:
        UnsealError: malformed, unknown key, wrong context or tampered.
    """
    try:
        version, kid, nonce, ciphertext = sealed.split(".")
    except ValueError:
        raise UnsealError("malformed sealed value") from None
    key = ring.find(kid)
    if version != _VERSION or key is None:
        raise UnsealError("sealed under an unknown key or version")
    try:
        return _aes_key(key).decrypt(_unb64(nonce), _unb64(ciphertext), context.encode())
    except (InvalidTag, ValueError):
        raise UnsealError("sealed value does not open") from None
