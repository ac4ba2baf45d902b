"""Key rings: an ordered list of secret keys so keys can rotate.

The first key is used for everything new (signing, hashing, sealing); every
key is still accepted when checking, so a new key can be put in front and the
old one removed once what it protected has expired.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

MIN_KEY_LENGTH = 32


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret value whose ``repr`` and ``str`` never show it."""

    value: bytes = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Key:
    """One key and its public identifier (a short fingerprint, safe to publish)."""

    kid: str
    secret: Secret


class KeyRing:
    """Ordered keys, newest first. ``current`` signs; ``all`` verify."""

    __slots__ = ("_keys",)

    def __init__(self, secrets: Iterable[str | bytes]) -> None:
        keys: list[Key] = []
        for raw in secrets:
            value = raw.encode() if isinstance(raw, str) else bytes(raw)
            if len(value) < MIN_KEY_LENGTH:
                raise ValueError(f"keys must be at least {MIN_KEY_LENGTH} bytes long")
            kid = hashlib.sha256(b"keystile-kid:" + value).hexdigest()[:16]
            keys.append(Key(kid=kid, secret=Secret(value)))
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._keys = tuple(keys)

    @property
    def current(self) -> Key:
        """The key used for everything new."""
        return self._keys[0]

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def find(self, kid: str) -> Key | None:
        """The key with identifier ``kid``, or ``None``."""
        for key in self._keys:
            if key.kid == kid:
                return key
        return None

    def __repr__(self) -> str:
        return f"KeyRing(kids={[key.kid for key in self._keys]!r})"
