"""Password strategy configuration."""

from __future__ import annotations

from dataclasses import dataclass

from keystile.crypto.passwords import PRESETS

MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True, slots=True)
class PasswordConfig:
    """Frozen options of the password strategy.

    Attributes:
        hash_preset: a name from :data:`keystile.crypto.passwords.PRESETS`.
        registration_enabled: whether ``POST …/password/register`` exists. Off by
            default: open registration tells anyone which emails have accounts.
        min_length: shortest password accepted at registration (NIST SP 800-63B: 8).
    """

    hash_preset: str = "rfc9106_low_memory"
    registration_enabled: bool = False
    min_length: int = MIN_PASSWORD_LENGTH

    def __post_init__(self) -> None:
        if self.hash_preset not in PRESETS:
            raise ValueError(f"hash_preset must be one of {sorted(PRESETS)}")
