"""Keyed hashing (HMAC-SHA256 with a server-side key, a "pepper").

Used where a value must be found again by recomputation (an OTP's token id)
and where a stolen database alone must not give the value back. The parts
are length-prefixed before hashing, so ``("ab", "c")`` and ``("a", "bc")``
never collide.
"""

from __future__ import annotations

import hashlib
import hmac

from keystile.crypto.keyring import Key, KeyRing


def _encode(parts: tuple[str, ...]) -> bytes:
    chunks = []
    for part in parts:
        data = part.encode()
        chunks.append(len(data).to_bytes(4, "big") + data)
    return b"".join(chunks)


def keyed_hash(key: Key, *parts: str) -> str:
    """HMAC-SHA256 of the length-prefixed ``parts``, as 64 hex digits."""
    return hmac.new(key.secret.value, _encode(parts), hashlib.sha256).hexdigest()


def keyed_hashes(ring: KeyRing, *parts: str) -> list[str]:
    """The keyed hash under every key of ``ring``, current key first.

    A lookup matches any of them, so values hashed before a key rotation are
    still found until the old key is removed.
    """
    return [keyed_hash(key, *parts) for key in ring]
