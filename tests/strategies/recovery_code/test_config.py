"""Start-up validation of recovery-code configurations: each problem names its option and fix."""

from __future__ import annotations

from typing import Any

import pytest

from keystile.strategies.recovery_code.config import RecoveryCodeConfig, configuration_problems


def problems(**overrides: Any) -> list[str]:
    return configuration_problems(RecoveryCodeConfig(**overrides))


def test_the_defaults_are_sound() -> None:
    """10 codes of 16 symbols (80 bits), keyed, batch mode, 5/15m: no problem."""
    config = RecoveryCodeConfig()
    assert configuration_problems(config) == []
    assert (config.enabled, config.batch_size, config.length, config.group_size) == (
        True,
        10,
        16,
        4,
    )
    assert (config.mode, config.storage, config.rate, config.low_threshold) == (
        "batch",
        "keyed",
        "5/15m",
        2,
    )
    assert config.entropy_bits == 80


@pytest.mark.parametrize(("length", "accepted"), [(12, False), (13, True), (16, True)])
def test_keyed_storage_is_refused_under_64_bits(length: int, accepted: bool) -> None:
    """12 symbols are 60 bits: a keyed hash is refused, naming both ways out; 13 (65 bits) pass."""
    found = problems(length=length, storage="keyed")
    if accepted:
        assert found == []
    else:
        assert found == [
            "recovery_code storage (KEYSTILE_RECOVERY_CODE_STORAGE): 12 symbols give 60 bits; "
            "under 64 bits NIST SP 800-63B-4 requires a password hash, not a keyed hash: set "
            "KEYSTILE_RECOVERY_CODE_STORAGE=argon2, or KEYSTILE_RECOVERY_CODE_LENGTH to at "
            "least 13"
        ]


def test_argon2_storage_accepts_a_short_format_down_to_20_bits() -> None:
    """argon2 storage: 8 symbols (40 bits) and 4 (20 bits) pass; 3 (15 bits) is refused."""
    assert problems(length=8, storage="argon2", group_size=4) == []
    assert problems(length=4, storage="argon2", group_size=4) == []
    assert problems(length=3, storage="argon2", group_size=3) == [
        "recovery_code length (KEYSTILE_RECOVERY_CODE_LENGTH): 3 symbols give 15 bits, fewer "
        "than the 20 NIST SP 800-63B-4 requires of a look-up secret; use at least 4 symbols"
    ]


@pytest.mark.parametrize("batch_size", [0, 101, -1])
def test_batch_size_outside_1_to_100_is_refused(batch_size: int) -> None:
    """The batch size names its variable and its range."""
    assert problems(batch_size=batch_size) == [
        f"recovery_code batch_size (KEYSTILE_RECOVERY_CODE_BATCH_SIZE): {batch_size} is "
        "outside 1..100; 10 is usual (single_code mode always issues 1)"
    ]


def test_single_code_mode_issues_one_code_whatever_the_batch_size() -> None:
    """single_code forces one code per generation; other modes issue batch_size."""
    assert RecoveryCodeConfig(mode="single_code", batch_size=10).codes_per_batch == 1
    assert RecoveryCodeConfig(mode="rotate_on_use", batch_size=7).codes_per_batch == 7
    assert problems(mode="single_code") == []


def test_unknown_mode_and_storage_are_refused() -> None:
    """A mode or storage outside the documented names is named with the choices."""
    assert problems(mode="many", storage="plain") == [
        "recovery_code mode (KEYSTILE_RECOVERY_CODE_MODE): 'many' is not one of batch, "
        "rotate_on_use, single_code",
        "recovery_code storage (KEYSTILE_RECOVERY_CODE_STORAGE): 'plain' is not one of keyed, "
        "argon2",
    ]


@pytest.mark.parametrize("rate", ["5", "0/15m", "5/15x", ""])
def test_a_malformed_or_empty_rate_is_refused(rate: str) -> None:
    """The failure rate must parse as <limit>/<number><unit> with a limit of at least 1."""
    assert problems(rate=rate) == [
        f"recovery_code rate (KEYSTILE_RECOVERY_CODE_RATE): {rate!r} is not a rate such as "
        "5/15m (failed verifications per user; units s, m, h, d)"
    ]


def test_length_group_size_and_low_threshold_are_bounded() -> None:
    """Length 1..64; group size 1..length; low threshold not negative."""
    assert problems(length=65) == [
        "recovery_code length (KEYSTILE_RECOVERY_CODE_LENGTH): 65 is outside 1..64; the "
        "default 16 symbols give 80 bits"
    ]
    assert problems(group_size=0) == [
        "recovery_code group_size: 0 must be between 1 and the code length (16); 4 gives "
        "XXXX-XXXX-XXXX-XXXX"
    ]
    assert problems(low_threshold=-1) == [
        "recovery_code low_threshold: -1 must be 0 or more (status reports low when this many "
        "codes or fewer remain)"
    ]
    assert problems(batch_size=1, low_threshold=2) == []
