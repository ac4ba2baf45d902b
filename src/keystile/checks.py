"""Start-up safety checks: which settings are unsafe, and how to fix each.

Pure: reads only the Settings (and the worker count the server was given), no
I/O, so every rule is tested as a table. Production refuses to start on any
problem; development logs each as a warning. Every problem is listed at once,
each naming the ``KEYSTILE_`` option to change and the fix.
"""

from __future__ import annotations

import ipaddress
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from keystile.crypto.alphabets import ALPHABETS, code_space
from keystile.crypto.passwords import PRESETS
from keystile.limits.protection import AuditLogProtection, HookProtection
from keystile.settings import KEY_FIELDS, Settings
from keystile.strategies.otp.config import OtpConfig
from keystile.strategies.otp.config import configuration_problems as otp_configuration_problems
from keystile.strategies.recovery_code.config import (
    config_from_settings as recovery_config_from_settings,
)
from keystile.strategies.recovery_code.config import (
    configuration_problems as recovery_configuration_problems,
)
from keystile.strategies.totp.config import config_from_settings as totp_config_from_settings
from keystile.strategies.totp.config import configuration_problems as totp_configuration_problems

#: Highest chance a guesser may have of hitting one identity's code in one day.
MAX_DAILY_GUESS_ODDS = 1 / 10_000

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*([0-9]+)/([0-9]+)([smhd])\s*$")


@dataclass(frozen=True, slots=True)
class Problem:
    """One unsafe setting: the option to change and a message saying how."""

    option: str
    message: str

    def __str__(self) -> str:
        return f"{self.option}: {self.message}"


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def rate_problems(settings: Settings) -> list[Problem]:
    """Rates whose limit or window is zero (they cannot be enforced)."""
    problems = []
    for name in (
        "password_sign_in_rate",
        "password_sign_in_address_rate",
        "otp_request_rate",
        "otp_sign_in_rate",
        "totp_rate",
        "recovery_code_rate",
    ):
        match = _RATE.match(getattr(settings, name))
        if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
            problems.append(
                Problem(
                    f"KEYSTILE_{name.upper()}",
                    "the limit and the window must both be at least 1, e.g. `5/10m`",
                )
            )
    return problems


def password_hash_budget_problem(settings: Settings) -> Problem | None:
    """A problem when the automatic hash concurrency's memory budget cannot hold one hash.

    The hasher still runs one hash at a time then, but the process would use
    more memory than the operator allowed for hashing.
    """
    if settings.password_hash_concurrency > 0:
        return None
    needed_mib = -(-PRESETS[settings.password_hash_preset].memory_cost_kib // 1024)
    if settings.password_hash_memory_mb >= needed_mib:
        return None
    return Problem(
        "KEYSTILE_PASSWORD_HASH_MEMORY_MB",
        f"{settings.password_hash_memory_mb} MiB cannot hold even one "
        f"`{settings.password_hash_preset}` hash ({needed_mib} MiB): raise it to at least "
        f"{needed_mib}, or set KEYSTILE_PASSWORD_HASH_CONCURRENCY",
    )


def _daily_guess_odds(settings: Settings) -> float | None:
    match = _RATE.match(settings.otp_sign_in_rate)
    if match is None or int(match.group(2)) < 1:
        return None
    limit = int(match.group(1))
    window = int(match.group(2)) * _UNITS[match.group(3)]
    attempts_per_day = limit * 86400 / window
    return attempts_per_day / code_space(ALPHABETS[settings.otp_characters], settings.otp_length)


def _daily_totp_odds(settings: Settings) -> float | None:
    """A guesser's chance per account per day against TOTP: the attempts a day allows
    (the rate, capped by the daily failure limit) times the codes accepted at once."""
    match = _RATE.match(settings.totp_rate)
    if match is None or int(match.group(2)) < 1:
        return None
    per_day = int(match.group(1)) * 86400 / (int(match.group(2)) * _UNITS[match.group(3)])
    attempts = min(per_day, settings.totp_max_failures_per_day)
    accepted = 2 * settings.totp_window + 1
    return attempts * accepted * 10.0**-settings.totp_digits


def configuration_problems(settings: Settings, *, workers: int = 1) -> list[Problem]:
    """Every unsafe setting in ``settings`` (empty when the configuration is safe).

    ``workers`` is the number of server processes (``keystile serve --workers``):
    the in-memory limiter counts per process, so several workers multiply the limits.
    """
    problems = rate_problems(settings)
    if settings.password_hash_preset == "test":  # noqa: S105 (a preset name)
        problems.append(
            Problem(
                "KEYSTILE_PASSWORD_HASH_PRESET",
                "`test` hashes passwords weakly; use `rfc9106_low_memory` or `rfc9106_high_memory`",
            )
        )
    budget = password_hash_budget_problem(settings)
    if budget is not None:
        problems.append(budget)
    if settings.sender == "webhook":
        url = settings.webhook_url or ""
        if urlsplit(url).scheme != "https":
            problems.append(
                Problem("KEYSTILE_WEBHOOK_URL", "codes travel in clear text: use https://")
            )
        if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
            problems.append(
                Problem(
                    "KEYSTILE_WEBHOOK_SECRET",
                    "webhooks would be sent unsigned: set a random secret of 32+ bytes",
                )
            )
    if (
        settings.sender == "smtp"
        and settings.smtp_security == "none"
        and not _is_loopback(settings.smtp_host)
    ):
        problems.append(
            Problem(
                "KEYSTILE_SMTP_SECURITY",
                f"`none` sends codes in clear to {settings.smtp_host}: use `starttls` or `tls`",
            )
        )
    odds = _daily_guess_odds(settings)
    if settings.otp_enabled and odds is not None and odds > MAX_DAILY_GUESS_ODDS:
        problems.append(
            Problem(
                "KEYSTILE_OTP_SIGN_IN_RATE",
                f"allows a guesser a {odds:.2e} chance per identity per day (limit "
                f"{MAX_DAILY_GUESS_ODDS:.0e}): lower the rate or raise KEYSTILE_OTP_LENGTH",
            )
        )
    totp_odds = _daily_totp_odds(settings)
    if settings.totp_enabled and totp_odds is not None and totp_odds > MAX_DAILY_GUESS_ODDS:
        problems.append(
            Problem(
                "KEYSTILE_TOTP_MAX_FAILURES_PER_DAY",
                f"with KEYSTILE_TOTP_RATE, KEYSTILE_TOTP_WINDOW and KEYSTILE_TOTP_DIGITS this "
                f"allows a guesser a {totp_odds:.2e} chance per account per day (limit "
                f"{MAX_DAILY_GUESS_ODDS:.0e}): lower it, narrow the window or use 8 digits",
            )
        )
    seen: dict[str, str] = {}
    for name in KEY_FIELDS:
        for key in getattr(settings, name):
            value = key.get_secret_value()
            if value in seen and seen[value] != name:
                problems.append(
                    Problem(
                        f"KEYSTILE_{name.upper()}",
                        f"reuses a key of KEYSTILE_{seen[value].upper()}: give each purpose its "
                        "own random key",
                    )
                )
            seen.setdefault(value, name)
    if settings.rate_limit_backend == "memory" and workers > 1:
        problems.append(
            Problem(
                "KEYSTILE_RATE_LIMIT_BACKEND",
                f"`memory` counts per process, so {workers} workers multiply every limit: "
                "use `database` or `redis`",
            )
        )
    return problems


def database_file_problem(settings: Settings) -> Problem | None:
    """A problem when the SQLite database file is readable by group or others.

    Reads the file's mode (the one I/O in this module): it holds password hashes
    and the audit log.
    """
    url = settings.database_url
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return Problem(
            "KEYSTILE_DATABASE_URL",
            f"{path} is readable by other users (mode {mode:o}): run `chmod 600 {path}`",
        )
    return None


@dataclass(frozen=True, slots=True)
class _Coverage:
    """Which actions the configured brute-force protections cover, read from the settings."""

    actions: frozenset[str]
    audit_log_alone: bool

    def covers(self, action: str) -> bool:
        return action in self.actions

    def audit_log_only(self) -> bool:
        return self.audit_log_alone


def _otp_coverage(settings: Settings, hooks: Sequence[HookProtection]) -> _Coverage:
    actions: set[str] = set()
    if "rate_limit" in settings.otp_brute_force:
        actions |= {"request", "sign_in"}
    if "audit_log" in settings.otp_brute_force:
        actions |= AuditLogProtection.protected_actions
    for hook in hooks:
        actions |= hook.protected
    alone = settings.otp_brute_force == ("audit_log",) and not hooks
    return _Coverage(frozenset(actions), audit_log_alone=alone)


def otp_config(settings: Settings) -> OtpConfig:
    """The OTP strategy's options from ``settings``."""
    return OtpConfig(
        lifetime=timedelta(seconds=settings.otp_lifetime_seconds),
        length=settings.otp_length,
        characters=settings.otp_characters,
        case_sensitive=settings.otp_case_sensitive,
        single_use=settings.otp_single_use,
        registration_enabled=settings.otp_registration_enabled,
        max_attempts_per_code=settings.otp_max_attempts,
    )


def startup_problems(
    settings: Settings,
    *,
    hooks: Sequence[HookProtection] = (),
    sender_given: bool = False,
    otp_generator: object | None = None,
    workers: int = 1,
) -> list[str]:
    """Every reason a deployment must not start, listed at once, each naming its option.

    Pure: the composition root calls it before building anything, so nothing
    is built (and leaked) for a configuration that is refused. In production
    the unsafe settings of :func:`configuration_problems` are refused too; in
    development they are only warned about (see :func:`development_warnings`).
    ``sender_given``: the library user passed their own sender.
    """
    problems = [_missing_key(name) for name in settings.missing_keys()]
    production = settings.mode == "production"
    unsafe = configuration_problems(settings, workers=workers)
    if production:
        problems += [str(problem) for problem in unsafe]
        exposed = database_file_problem(settings)
        if exposed is not None:
            problems.append(str(exposed))
    else:  # a zero rate cannot be enforced in any mode
        problems += [str(problem) for problem in rate_problems(settings)]
    if settings.rate_limit_backend == "redis":
        scheme = urlsplit(settings.redis_url or "").scheme
        if not settings.redis_url:
            problems.append("KEYSTILE_REDIS_URL: required when KEYSTILE_RATE_LIMIT_BACKEND=redis")
        elif scheme not in {"redis", "rediss", "unix"}:
            problems.append(
                "KEYSTILE_REDIS_URL: not a Redis URL; use redis://, rediss:// or unix://"
            )
    if not sender_given:
        if settings.sender == "webhook" and not settings.webhook_url:
            problems.append("KEYSTILE_WEBHOOK_URL: required when KEYSTILE_SENDER=webhook")
        if settings.sender == "console" and production and settings.otp_enabled:
            problems.append(
                "KEYSTILE_SENDER: the console sender prints codes in clear and is for "
                "development only; choose smtp or webhook in production"
            )
    if settings.mfa_policy == "required" and not settings.totp_enabled:
        problems.append(
            "KEYSTILE_MFA_POLICY: `required` needs a second factor to enrol in: set "
            "KEYSTILE_TOTP_ENABLED=true or the policy to `optional`"
        )
    if settings.totp_enabled:
        problems += totp_configuration_problems(totp_config_from_settings(settings))
    if settings.recovery_codes_enabled:
        problems += recovery_configuration_problems(recovery_config_from_settings(settings))

    if settings.otp_enabled:
        problems += otp_configuration_problems(
            otp_config(settings),
            guard=_otp_coverage(settings, hooks),
            sender="given" if sender_given else settings.sender,
            generator=otp_generator,
        )
    return list(dict.fromkeys(problems))  # a rate problem may come from both lists


def development_warnings(settings: Settings, *, workers: int = 1) -> list[str]:
    """The unsafe settings production would refuse, for a warning in development.

    The ``test`` password preset is left out: it is the development and
    test-suite setting.
    """
    if settings.mode == "production":
        return []
    return [
        str(problem)
        for problem in configuration_problems(settings, workers=workers)
        if problem.option != "KEYSTILE_PASSWORD_HASH_PRESET"
    ]


def _missing_key(name: str) -> str:
    return f"KEYSTILE_{name.upper()} is not set"
