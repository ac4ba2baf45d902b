"""Start-up safety checks: each unsafe setting is named, production refuses, development warns."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from keystile.checks import configuration_problems
from keystile.errors import ConfigurationError
from keystile.runtime import Runtime
from keystile.settings import Settings

KEYS = {
    "signing_keys": ("s" * 32,),
    "hashing_keys": ("h" * 32,),
    "encryption_keys": ("e" * 32,),
}

UNSAFE: list[tuple[dict[str, Any], str]] = [
    ({"password_hash_preset": "test"}, "KEYSTILE_PASSWORD_HASH_PRESET"),
    (
        {"sender": "webhook", "webhook_url": "http://hooks.example", "webhook_secret": "x" * 32},
        "KEYSTILE_WEBHOOK_URL",
    ),
    ({"sender": "webhook", "webhook_url": "https://hooks.example"}, "KEYSTILE_WEBHOOK_SECRET"),
    (
        {"sender": "smtp", "smtp_security": "none", "smtp_host": "mail.example"},
        "KEYSTILE_SMTP_SECURITY",
    ),
    ({"otp_sign_in_rate": "100/1m"}, "KEYSTILE_OTP_SIGN_IN_RATE"),
    ({"otp_sign_in_rate": "0/10m"}, "KEYSTILE_OTP_SIGN_IN_RATE"),
    ({"otp_request_rate": "5/0s"}, "KEYSTILE_OTP_REQUEST_RATE"),
    ({"hashing_keys": ("s" * 32,)}, "KEYSTILE_HASHING_KEYS"),
]


def settings(**overrides: Any) -> Settings:
    return Settings(**{**KEYS, "database_url": "sqlite://", **overrides})


def test_defaults_have_no_problem() -> None:
    assert configuration_problems(settings()) == []


def test_smtp_none_to_loopback_is_fine() -> None:
    assert configuration_problems(settings(sender="smtp", smtp_security="none")) == []


@pytest.mark.parametrize(("overrides", "option"), UNSAFE)
def test_each_unsafe_setting_names_its_option(overrides: dict[str, Any], option: str) -> None:
    assert [problem.option for problem in configuration_problems(settings(**overrides))] == [option]


def test_guess_odds_are_in_the_message() -> None:
    (problem,) = configuration_problems(settings(otp_sign_in_rate="100/1m"))
    # 100 * 1440 guesses a day over 21**6 codes
    assert f"{100 * 1440 / 21**6:.2e}" in problem.message


def test_memory_limiter_with_several_workers() -> None:
    base = settings(rate_limit_backend="memory")
    assert configuration_problems(base) == []
    (problem,) = configuration_problems(base, workers=2)
    assert problem.option == "KEYSTILE_RATE_LIMIT_BACKEND"


def test_every_problem_is_listed_at_once() -> None:
    combined: dict[str, Any] = {}
    for overrides, _ in UNSAFE[:1] + UNSAFE[3:5]:
        combined.update(overrides)
    assert len(configuration_problems(settings(**combined))) == 3


@pytest.mark.parametrize(("overrides", "option"), UNSAFE)
def test_production_refuses(overrides: dict[str, Any], option: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Runtime(settings(mode="production", database_url=f"sqlite:///{tmp_path}/k.db", **overrides))
    assert any(option in problem for problem in caught.value.problems)


def test_development_warns(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    with caplog.at_level(logging.WARNING, logger="keystile.runtime"):
        runtime = Runtime(
            settings(otp_sign_in_rate="100/1m", database_url=f"sqlite:///{tmp_path}/k.db")
        )
    runtime.close()
    assert "KEYSTILE_OTP_SIGN_IN_RATE" in caplog.text


def test_malformed_redis_url_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Runtime(
            settings(
                rate_limit_backend="redis",
                redis_url="notaurl",
                database_url=f"sqlite:///{tmp_path}/k.db",
            )
        )
    assert any("KEYSTILE_REDIS_URL" in problem for problem in caught.value.problems)
