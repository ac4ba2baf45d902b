"""Start-up validation: weak or unwired OTP configurations refuse to start."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from keystile.errors import ConfigurationError
from keystile.limits.memory import MemoryRateLimiter
from keystile.limits.protection import (
    AuditLogProtection,
    BruteForceGuard,
    HookProtection,
    RateLimitProtection,
)
from keystile.limits.rate import Rate
from keystile.runtime import Runtime
from keystile.senders.console import ConsoleSender
from keystile.settings import Settings
from keystile.store.audit import AuditStore
from keystile.store.database import Database
from keystile.strategies.otp.config import OtpConfig, configuration_problems

RATE = Rate(limit=5, window=timedelta(minutes=10))


def rate_limit(*actions: str) -> RateLimitProtection:
    return RateLimitProtection(MemoryRateLimiter(), {action: RATE for action in actions})


def audit_log(folder: Path) -> AuditLogProtection:
    # Never queried here: only the kind of protection matters to the validation.
    return AuditLogProtection(AuditStore(Database(f"sqlite:///{folder / 'unused-audit.db'}")))


def problems_of(
    *,
    guard: BruteForceGuard | None = None,
    sender: Any = "console",
    generator: object | None = None,
    **overrides: Any,
) -> list[str]:
    """The problems of an OtpConfig with ``overrides`` and the collaborators given to it."""
    return configuration_problems(
        OtpConfig(**overrides),
        guard=guard or BruteForceGuard([rate_limit("request", "sign_in")]),
        sender=ConsoleSender() if sender == "console" else sender,
        generator=generator,
    )


@pytest.mark.parametrize(
    ("characters", "length", "accepted"),
    [
        ("digits_only", 5, False),
        ("digits_only", 6, True),
        ("unambiguous_uppercase", 4, False),
        ("unambiguous_uppercase", 5, True),
        ("uppercase_letters_only", 4, False),
        ("uppercase_letters_only", 5, True),
        ("unambiguous_alphanumeric", 4, False),
        ("unambiguous_alphanumeric", 5, True),
    ],
)
def test_entropy_floor_of_one_million_codes(characters: str, length: int, accepted: bool) -> None:
    """Digits need 6 symbols, the letter sets 5; the message names the option and the fix."""
    problems = problems_of(characters=characters, length=length)
    if accepted:
        assert problems == []
    else:
        [problem] = problems
        assert problem.startswith("otp length (KEYSTILE_OTP_LENGTH)")
        assert "fewer than the 1,000,000 required" in problem
        assert f"at least {6 if characters == 'digits_only' else 5}" in problem


def test_missing_protection_is_refused_per_action() -> None:
    """No protection at all, or one wired to a single action, names each uncovered action."""
    none = problems_of(guard=BruteForceGuard([]))
    assert [p for p in none if "nothing protects the request action" in p]
    assert [p for p in none if "nothing protects the sign_in action" in p]
    only_sign_in = problems_of(guard=BruteForceGuard([rate_limit("sign_in")]))
    assert len(only_sign_in) == 1
    assert "request action" in only_sign_in[0]


def test_a_hook_counts_as_protection() -> None:
    """A custom hook wired to both actions satisfies the wiring check."""
    guard = BruteForceGuard([HookProtection(lambda attempt: True)])
    assert problems_of(guard=guard) == []


def test_registration_with_audit_log_only_is_refused(tmp_path: Path) -> None:
    """Registration needs a protection that works without an existing user."""
    problems = problems_of(guard=BruteForceGuard([audit_log(tmp_path)]), registration_enabled=True)
    assert [p for p in problems if p.startswith("otp registration (KEYSTILE_OTP_REGISTRATION")]
    both = BruteForceGuard([audit_log(tmp_path), rate_limit("request", "sign_in")])
    assert problems_of(guard=both, registration_enabled=True) == []


def test_audit_log_alone_leaves_requests_unlimited_and_is_refused(tmp_path: Path) -> None:
    """audit_log counts failed sign-ins only, so alone it leaves code requests unlimited.

    Issue 7 item 3: such a configuration is refused at start-up, naming the action.
    """
    [problem] = problems_of(guard=BruteForceGuard([audit_log(tmp_path)]))
    assert "nothing protects the request action" in problem
    assert "KEYSTILE_OTP_BRUTE_FORCE" in problem


class OnlyGenerate:
    def generate(self, length: int, characters: str) -> str:
        return "1" * length


class WeakButComplete(OnlyGenerate):
    def normalize(self, code: str) -> str:
        return code.strip()


def test_custom_generator_needs_normalize_and_skips_the_entropy_check() -> None:
    """A generator without normalize() is refused; a complete one is trusted (its author's duty)."""
    [problem] = problems_of(generator=OnlyGenerate())
    assert "no normalize() method" in problem
    assert problems_of(generator=WeakButComplete(), length=2) == []


def test_missing_sender_is_refused() -> None:
    """A sender is required."""
    assert problems_of(sender=None) == [
        "otp sender (KEYSTILE_SENDER): a sender is required to deliver codes"
    ]


def test_runtime_refuses_to_start_listing_every_problem(
    make_settings: Callable[..., Settings],
) -> None:
    """Through settings: every problem in one ConfigurationError."""
    with pytest.raises(ConfigurationError) as caught:
        Runtime(
            make_settings(
                otp_characters="digits_only",
                otp_length=4,
                otp_brute_force="",
                rate_limit_backend="redis",
            )
        )
    text = "\n".join(caught.value.problems)
    assert "KEYSTILE_OTP_LENGTH" in text
    assert "KEYSTILE_REDIS_URL" in text
    assert "nothing protects the request action" in text
    assert "nothing protects the sign_in action" in text


def test_production_refuses_the_console_sender(make_settings: Callable[..., Settings]) -> None:
    """The console prints codes in clear: development only."""
    with pytest.raises(ConfigurationError, match="KEYSTILE_SENDER"):
        Runtime(make_settings(mode="production", password_hash_preset="rfc9106_low_memory"))
