"""TOTP decisions (pure): new secrets and verifying a submitted code.

No I/O and no clock reads: ``now`` and the last accepted step come in as
parameters, and the step a code matched goes out in the result, so the
caller stores it (one conditional update, ``keystile.store.totp.record_step``)
and a code is accepted once.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from keystile.strategies.totp.config import MIN_SECRET_BYTES
from keystile.strategies.totp.rfc6238 import Algorithm, time_step, totp_at_step


def new_secret(size: int = MIN_SECRET_BYTES) -> bytes:
    """A fresh shared secret of ``size`` random bytes (from :mod:`secrets`).

    Raises:
        ValueError: fewer than 160 bits (RFC 4226 section 4, R6).
    """
    if size < MIN_SECRET_BYTES:
        raise ValueError(f"a TOTP secret needs at least {MIN_SECRET_BYTES * 8} bits")
    return secrets.token_bytes(size)


class TotpOutcome(StrEnum):
    """What a submitted code turned out to be."""

    ACCEPTED = "accepted"
    """Matches a step of the window later than the last accepted one."""
    WRONG = "wrong"
    """Matches no step of the window, or is not a code at all."""
    REPLAYED = "replayed"
    """Matches only steps at or before the last accepted one: already used."""


@dataclass(frozen=True, slots=True)
class TotpCheck:
    """The result of :func:`verify_totp`.

    Attributes:
        outcome: accepted, wrong or replayed.
        step: the time step the code matched (accepted: the one to store as
            the last accepted step; replayed: the used step); ``None`` when wrong.
    """

    outcome: TotpOutcome
    step: int | None = None

    @property
    def accepted(self) -> bool:
        """Whether the code passes (the caller must still record :attr:`step` atomically)."""
        return self.outcome is TotpOutcome.ACCEPTED


WRONG = TotpCheck(TotpOutcome.WRONG)


def normalize_code(code: str, digits: int) -> str | None:
    """``code`` without whitespace if it is then exactly ``digits`` ASCII digits, else ``None``.

    Apps show codes as ``123 456``; anything else (letters, other lengths,
    non-ASCII digits such as Arabic-Indic or fullwidth ones) cannot be a code.
    """
    if len(code) > 4 * digits:  # bounded work for absurd input
        return None
    compact = "".join(code.split())
    if len(compact) != digits or not (compact.isascii() and compact.isdigit()):
        return None
    return compact


def verify_totp(
    secret: bytes,
    code: str,
    *,
    now: datetime,
    period: int = 30,
    window: int = 1,
    last_step: int | None = None,
    digits: int = 6,
    algorithm: Algorithm = "SHA1",
) -> TotpCheck:
    """Check ``code`` against the steps ``T - window … T + window`` around ``now`` (RFC 6238 §5.2).

    Every step of the window is computed and compared with
    :func:`hmac.compare_digest`, whatever matched, so the time taken does not
    tell which step (if any) a code belongs to. A malformed code is simply
    wrong. A step at or before ``last_step`` is never accepted (RFC 6238
    §5.2: "the verifier MUST NOT accept the second attempt of the same OTP");
    of several matching steps the latest wins.

    Args:
        secret: the shared secret.
        code: as the user typed it (spaces allowed).
        now: aware current time.
        period, digits, algorithm: the authenticator's parameters.
        window: steps of drift accepted either side (0 to 2 by configuration).
        last_step: the last step accepted for this authenticator, if any.

    Returns:
        :class:`TotpCheck`: accepted with the step to store, replayed, or wrong.

    Raises:
        ValueError: unusable parameters (naive ``now``, short secret, …), never for a bad code.
    """
    current = time_step(now, period=period)
    candidate = normalize_code(code, digits)
    # Compare against something of the right shape even for a malformed code,
    # so a malformed code costs what a wrong one costs.
    submitted = (candidate or "0" * digits).encode("ascii")
    fresh: int | None = None
    used: int | None = None
    for step in range(max(current - window, 0), current + window + 1):
        expected = totp_at_step(secret, step, digits=digits, algorithm=algorithm).encode("ascii")
        if hmac.compare_digest(expected, submitted) and candidate is not None:
            if last_step is None or step > last_step:
                fresh = step
            else:
                used = step
    if fresh is not None:
        return TotpCheck(TotpOutcome.ACCEPTED, fresh)
    if used is not None:
        return TotpCheck(TotpOutcome.REPLAYED, used)
    return WRONG
