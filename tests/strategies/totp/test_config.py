"""TOTP configuration: defaults, settings, and start-up problems naming the option and fix."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from keystile.errors import ConfigurationError
from keystile.settings import load_settings
from keystile.strategies.totp.config import (
    TotpConfig,
    config_from_settings,
    configuration_problems,
)

DEFAULT = TotpConfig(issuer="Keystile")


def test_the_defaults_are_sound() -> None:
    """SHA1, 6 digits, 30 s, window 1, 160-bit secrets, 10 minute setup, 5/5m: no problem."""
    assert (DEFAULT.algorithm, DEFAULT.digits, DEFAULT.period, DEFAULT.window) == (
        "SHA1",
        6,
        30,
        1,
    )
    assert DEFAULT.secret_bytes == 20
    assert DEFAULT.setup_lifetime == timedelta(minutes=10)
    assert DEFAULT.rate == "5/5m"
    assert configuration_problems(DEFAULT) == []


@pytest.mark.parametrize(
    "config",
    [
        replace(DEFAULT, algorithm="SHA256", digits=8, period=60, window=0),
        replace(DEFAULT, algorithm="SHA512", period=120, window=2, secret_bytes=64),
        replace(DEFAULT, period=1),
    ],
)
def test_every_supported_combination_passes(config: TotpConfig) -> None:
    """The boundaries themselves (period 120 s, window 0 and 2, 8 digits) are allowed."""
    assert configuration_problems(config) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"period": 121},
            "totp period (KEYSTILE_TOTP_PERIOD_SECONDS): 121 s is outside 1 to 120 s "
            "(NIST SP 800-63B-4 limits a time-based code to 120 s); use 30",
        ),
        (
            {"period": 0},
            "totp period (KEYSTILE_TOTP_PERIOD_SECONDS): 0 s is outside 1 to 120 s "
            "(NIST SP 800-63B-4 limits a time-based code to 120 s); use 30",
        ),
        (
            {"secret_bytes": 16},
            "totp secret_bytes: 128 bits is fewer than the 160 required; use at least 20 bytes",
        ),
        (
            {"window": 3},
            "totp window (KEYSTILE_TOTP_WINDOW): 3 steps of drift is outside 0 to 2; use 1 "
            "(a code of the previous or next step is accepted)",
        ),
        (
            {"window": -1},
            "totp window (KEYSTILE_TOTP_WINDOW): -1 steps of drift is outside 0 to 2; use 1 "
            "(a code of the previous or next step is accepted)",
        ),
        (
            {"digits": 7},
            "totp digits (KEYSTILE_TOTP_DIGITS): 7 is not 6 or 8; use 6 (every authenticator "
            "app) or 8",
        ),
        (
            {"algorithm": "MD5"},
            "totp algorithm (KEYSTILE_TOTP_ALGORITHM): 'MD5' is not one of SHA1, SHA256, "
            "SHA512; SHA1 is what every authenticator app supports",
        ),
        (
            {"issuer": " "},
            "totp issuer (KEYSTILE_TOTP_ISSUER): must not be empty; it is the name the "
            "authenticator app shows",
        ),
        (
            {"setup_lifetime": timedelta(hours=2)},
            "totp setup_lifetime: a pending setup must be confirmable for between 1 minute "
            "and 1 hour; use 10 minutes",
        ),
        (
            {"rate": "0/5m"},
            "totp rate (KEYSTILE_TOTP_RATE): '0/5m' is not a rate of at least one attempt in "
            "a window of at least one unit, such as 5/5m (units s, m, h, d)",
        ),
    ],
)
def test_each_problem_names_the_option_and_the_fix(
    changes: dict[str, object], expected: str
) -> None:
    """One unsafe option gives exactly one problem, worded with its variable and the fix."""
    assert configuration_problems(replace(DEFAULT, **changes)) == [expected]  # type: ignore[arg-type]


def test_every_problem_is_reported_at_once() -> None:
    """Several unsafe options give one problem each, not just the first."""
    config = replace(DEFAULT, period=300, window=5, digits=4, secret_bytes=10)
    assert len(configuration_problems(config)) == 4


def test_settings_give_the_config_and_the_issuer_defaults_to_the_service_name(
    tmp_path: Path,
) -> None:
    """KEYSTILE_TOTP_* reach TotpConfig; without an issuer the service name is shown."""
    keys = tmp_path / "keys.json"
    settings = load_settings(keys_file=keys, service_name="Example App")
    assert config_from_settings(settings) == TotpConfig(issuer="Example App")
    settings = load_settings(
        keys_file=keys,
        totp_issuer="Example Bank",
        totp_algorithm="sha256",
        totp_digits=8,
        totp_period_seconds=60,
        totp_window=2,
        totp_rate="3/1m",
    )
    assert config_from_settings(settings) == TotpConfig(
        issuer="Example Bank", algorithm="SHA256", digits=8, period=60, window=2, rate="3/1m"
    )
    assert settings.totp_enabled is True


def test_an_unknown_algorithm_is_refused_when_settings_load(tmp_path: Path) -> None:
    """KEYSTILE_TOTP_ALGORITHM outside the three fails at load with the variable's name."""
    with pytest.raises(ConfigurationError) as raised:
        load_settings(keys_file=tmp_path / "keys.json", totp_algorithm="md5")
    assert raised.value.problems == (
        "KEYSTILE_TOTP_ALGORITHM: Input should be 'SHA1', 'SHA256' or 'SHA512'",
    )
