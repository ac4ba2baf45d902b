"""TOTP strategy configuration and its start-up validation (pure).

:func:`configuration_problems` lists every reason a configuration is unsafe,
each naming the option (``KEYSTILE_TOTP_*``) and the fix; the runtime refuses
to start while the list is not empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from keystile.rates import parse_rate
from keystile.settings import Settings
from keystile.strategies.totp.rfc6238 import ALGORITHMS, DIGITS, Algorithm

STRATEGY = "totp"

MAX_PERIOD_SECONDS = 120
"""NIST SP 800-63B-4 (section 3.1.4.1): a time-based OTP lives at most two minutes."""

MIN_SECRET_BYTES = 20
"""160 bits: RFC 4226 section 4 (R6) recommends it, NIST SP 800-63B-4 asks at least 112."""

MAX_WINDOW = 2
"""Steps of clock drift accepted either side; more widens what a guess can hit."""


@dataclass(frozen=True, slots=True)
class TotpConfig:
    """Frozen options of the TOTP strategy (defaults as documented in the README).

    Attributes:
        issuer: the name an authenticator app shows (the Key URI's issuer).
        algorithm: the HMAC hash of new authenticators.
        digits: code length of new authenticators (6 or 8).
        period: seconds per time step of new authenticators.
        window: steps of clock drift accepted before and after the current one.
        secret_bytes: length of new secrets.
        setup_lifetime: how long a pending setup may be confirmed.
        rate: TOTP failures allowed per user (``5/5m``), across every TOTP action.

    ``algorithm``, ``digits`` and ``period`` apply to new enrolments only:
    each authenticator keeps the parameters it was enrolled with.
    """

    issuer: str
    algorithm: Algorithm = "SHA1"
    digits: int = 6
    period: int = 30
    window: int = 1
    secret_bytes: int = MIN_SECRET_BYTES
    setup_lifetime: timedelta = timedelta(minutes=10)
    rate: str = "5/5m"


def config_from_settings(settings: Settings) -> TotpConfig:
    """The TOTP options of ``settings``; the issuer defaults to ``service_name``."""
    return TotpConfig(
        issuer=settings.totp_issuer or settings.service_name,
        algorithm=settings.totp_algorithm,
        digits=settings.totp_digits,
        period=settings.totp_period_seconds,
        window=settings.totp_window,
        rate=settings.totp_rate,
    )


def configuration_problems(config: TotpConfig) -> list[str]:
    """Every problem with ``config``, each naming the option (and its variable) to change."""
    problems: list[str] = []
    if not config.issuer.strip():
        problems.append(
            "totp issuer (KEYSTILE_TOTP_ISSUER): must not be empty; it is the name the "
            "authenticator app shows"
        )
    if config.algorithm not in ALGORITHMS:
        problems.append(
            f"totp algorithm (KEYSTILE_TOTP_ALGORITHM): {config.algorithm!r} is not one of "
            f"{', '.join(ALGORITHMS)}; SHA1 is what every authenticator app supports"
        )
    if config.digits not in DIGITS:
        problems.append(
            f"totp digits (KEYSTILE_TOTP_DIGITS): {config.digits} is not 6 or 8; use 6 "
            "(every authenticator app) or 8"
        )
    if not 1 <= config.period <= MAX_PERIOD_SECONDS:
        problems.append(
            f"totp period (KEYSTILE_TOTP_PERIOD_SECONDS): {config.period} s is outside 1 to "
            f"{MAX_PERIOD_SECONDS} s (NIST SP 800-63B-4 limits a time-based code to "
            f"{MAX_PERIOD_SECONDS} s); use 30"
        )
    if not 0 <= config.window <= MAX_WINDOW:
        problems.append(
            f"totp window (KEYSTILE_TOTP_WINDOW): {config.window} steps of drift is outside "
            f"0 to {MAX_WINDOW}; use 1 (a code of the previous or next step is accepted)"
        )
    if config.secret_bytes < MIN_SECRET_BYTES:
        problems.append(
            f"totp secret_bytes: {config.secret_bytes * 8} bits is fewer than the "
            f"{MIN_SECRET_BYTES * 8} required; use at least {MIN_SECRET_BYTES} bytes"
        )
    if not timedelta(minutes=1) <= config.setup_lifetime <= timedelta(hours=1):
        problems.append(
            "totp setup_lifetime: a pending setup must be confirmable for between 1 minute "
            "and 1 hour; use 10 minutes"
        )
    try:
        parse_rate(config.rate)  # also refuses a zero limit or window
    except ValueError:
        problems.append(
            f"totp rate (KEYSTILE_TOTP_RATE): {config.rate!r} is not a rate of at least one "
            "attempt in a window of at least one unit, such as 5/5m (units s, m, h, d)"
        )
    return problems
