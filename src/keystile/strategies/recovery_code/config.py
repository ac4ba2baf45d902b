"""Recovery-code configuration and its start-up validation (pure).

:func:`configuration_problems` lists every reason a configuration is unsafe,
each naming the option (and its ``KEYSTILE_RECOVERY_CODE_*`` variable) and
the fix; the runtime refuses to start while the list is not empty.

The entropy rule follows NIST SP 800-63B-4 on look-up secrets: at least 20
bits each, and a secret of fewer than 64 bits must be stored with an
approved password-hashing scheme (salted, costly), not a fast keyed hash.
So the default (16 Crockford base32 symbols, 80 bits) is stored as an
HMAC, and a shorter custom format must choose ``argon2`` storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, get_args

from keystile.rates import parse_rate

if TYPE_CHECKING:
    from keystile.settings import Settings

STRATEGY: Final = "recovery_code"

RecoveryCodeMode = Literal["batch", "rotate_on_use", "single_code"]
RecoveryCodeStorage = Literal["keyed", "argon2"]

MODES: Final[tuple[str, ...]] = get_args(RecoveryCodeMode)
STORAGES: Final[tuple[str, ...]] = get_args(RecoveryCodeStorage)

#: Crockford's base32 symbols: digits and letters without I, L, O and U.
ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BITS_PER_SYMBOL: Final = math.log2(len(ALPHABET))  # 5.0

#: Below this a keyed (fast) hash is refused (NIST SP 800-63B-4, look-up secrets).
MIN_KEYED_BITS: Final = 64
#: No look-up secret below this, whatever the storage (NIST SP 800-63B-4).
MIN_BITS: Final = 20
MAX_LENGTH: Final = 64
MAX_BATCH_SIZE: Final = 100


@dataclass(frozen=True, slots=True)
class RecoveryCodeConfig:
    """Frozen options of the recovery-code strategy (defaults as documented in the README).

    Attributes:
        enabled: when False, no batch is issued and a stored batch stops working.
        batch_size: codes per batch (``single_code`` mode always uses 1).
        length: Crockford base32 symbols per code (5 bits each).
        group_size: symbols per group in the display form (``XXXX-XXXX-…``).
        mode: ``batch`` (a set of codes, each used once), ``rotate_on_use`` (each use
            hands out one new code replacing the used one) or ``single_code`` (one
            active code; each generation replaces it).
        storage: ``keyed`` (HMAC-SHA256 with the hashing key; index lookup) or
            ``argon2`` (pepper then Argon2id; for formats under 64 bits; each
            verification checks every unused code of the user).
        rate: failed verifications allowed per user (``5/15m``).
        low_threshold: status reports ``low`` when this many or fewer codes remain.
    """

    enabled: bool = True
    batch_size: int = 10
    length: int = 16
    group_size: int = 4
    mode: str = "batch"
    storage: str = "keyed"
    rate: str = "5/15m"
    low_threshold: int = 2

    @property
    def codes_per_batch(self) -> int:
        """How many codes one generation issues: ``batch_size``, or 1 in ``single_code`` mode."""
        return 1 if self.mode == "single_code" else self.batch_size

    @property
    def entropy_bits(self) -> float:
        """The entropy of one code: ``length`` uniformly drawn base32 symbols."""
        return self.length * BITS_PER_SYMBOL


def config_from_settings(settings: Settings) -> RecoveryCodeConfig:
    """The recovery-code options of ``settings``."""
    return RecoveryCodeConfig(
        enabled=settings.recovery_codes_enabled,
        batch_size=settings.recovery_code_batch_size,
        length=settings.recovery_code_length,
        mode=settings.recovery_code_mode,
        storage=settings.recovery_code_storage,
        rate=settings.recovery_code_rate,
    )


def configuration_problems(config: RecoveryCodeConfig) -> list[str]:
    """Every problem with ``config``, each naming the option (and its variable) to change."""
    problems: list[str] = []
    if config.mode not in MODES:
        problems.append(
            f"recovery_code mode (KEYSTILE_RECOVERY_CODE_MODE): {config.mode!r} is not one of "
            f"{', '.join(MODES)}"
        )
    if config.storage not in STORAGES:
        problems.append(
            f"recovery_code storage (KEYSTILE_RECOVERY_CODE_STORAGE): {config.storage!r} is not "
            f"one of {', '.join(STORAGES)}"
        )
    if not 1 <= config.batch_size <= MAX_BATCH_SIZE:
        problems.append(
            f"recovery_code batch_size (KEYSTILE_RECOVERY_CODE_BATCH_SIZE): {config.batch_size} "
            f"is outside 1..{MAX_BATCH_SIZE}; 10 is usual (single_code mode always issues 1)"
        )
    if not 1 <= config.length <= MAX_LENGTH:
        problems.append(
            f"recovery_code length (KEYSTILE_RECOVERY_CODE_LENGTH): {config.length} is outside "
            f"1..{MAX_LENGTH}; the default 16 symbols give 80 bits"
        )
    elif config.entropy_bits < MIN_BITS:
        problems.append(
            f"recovery_code length (KEYSTILE_RECOVERY_CODE_LENGTH): {config.length} symbols give "
            f"{config.entropy_bits:.0f} bits, fewer than the {MIN_BITS} NIST SP 800-63B-4 requires "
            f"of a look-up secret; use at least {_symbols_for(MIN_BITS)} symbols"
        )
    elif config.storage == "keyed" and config.entropy_bits < MIN_KEYED_BITS:
        problems.append(
            f"recovery_code storage (KEYSTILE_RECOVERY_CODE_STORAGE): {config.length} symbols "
            f"give {config.entropy_bits:.0f} bits; under {MIN_KEYED_BITS} bits NIST SP 800-63B-4 "
            "requires a password hash, not a keyed hash: set "
            "KEYSTILE_RECOVERY_CODE_STORAGE=argon2, or KEYSTILE_RECOVERY_CODE_LENGTH to at least "
            f"{_symbols_for(MIN_KEYED_BITS)}"
        )
    if not 1 <= config.group_size <= max(config.length, 1):
        problems.append(
            f"recovery_code group_size: {config.group_size} must be between 1 and the code "
            f"length ({config.length}); 4 gives XXXX-XXXX-XXXX-XXXX"
        )
    if config.low_threshold < 0:
        problems.append(
            f"recovery_code low_threshold: {config.low_threshold} must be 0 or more (status "
            "reports low when this many codes or fewer remain)"
        )
    try:
        parse_rate(config.rate)
    except ValueError:
        problems.append(
            f"recovery_code rate (KEYSTILE_RECOVERY_CODE_RATE): {config.rate!r} is not a rate "
            "such as 5/15m (failed verifications per user; units s, m, h, d)"
        )
    return problems


def _symbols_for(bits: int) -> int:
    return math.ceil(bits / BITS_PER_SYMBOL)
