"""Argon2id password hashing with named parameter presets.

The verifier holds a dummy hash made with the same parameters, so checking a
password for an account that does not exist costs what a real check costs
(:meth:`PasswordHasher.verify_or_dummy`): timing does not tell whether an
email is registered.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final, Literal

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

PresetName = Literal["rfc9106_low_memory", "rfc9106_high_memory", "test"]


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """Argon2id cost parameters (RFC 9106 §4 names the two recommended sets)."""

    time_cost: int
    memory_cost_kib: int
    parallelism: int


#: Named presets. ``test`` is deliberately cheap: tests only, never production.
PRESETS: Final[dict[str, Argon2Parameters]] = {
    "rfc9106_low_memory": Argon2Parameters(time_cost=3, memory_cost_kib=64 * 1024, parallelism=4),
    "rfc9106_high_memory": Argon2Parameters(
        time_cost=1, memory_cost_kib=2 * 1024 * 1024, parallelism=4
    ),
    "test": Argon2Parameters(time_cost=1, memory_cost_kib=64, parallelism=1),
}

MAX_PASSWORD_LENGTH: Final = 1024


class PasswordHasher:
    """Hashes and verifies passwords with Argon2id."""

    def __init__(self, parameters: Argon2Parameters) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_cost_kib,
            parallelism=parameters.parallelism,
            type=argon2.Type.ID,
        )
        self._dummy = self._hasher.hash(secrets.token_urlsafe(32))

    @classmethod
    def from_preset(cls, name: str) -> PasswordHasher:
        """A hasher with the parameters of preset ``name`` (see :data:`PRESETS`)."""
        return cls(PRESETS[name])

    def hash(self, password: str) -> str:
        """A self-describing Argon2id hash of ``password`` with a random salt."""
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash``; never raises for a wrong password."""
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_or_dummy(self, stored_hash: str | None, password: str) -> bool:
        """Verify against ``stored_hash``, or burn the same work on the dummy hash and fail."""
        if stored_hash is None:
            self.verify(self._dummy, password)
            return False
        return self.verify(stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return False
