"""HOTP (RFC 4226) and TOTP (RFC 6238) code generation, on ``cryptography``'s primitives.

Pure: no clock reads. The dynamic truncation and HMAC are ``cryptography``'s
(:class:`~cryptography.hazmat.primitives.twofactor.hotp.HOTP` and
:class:`~cryptography.hazmat.primitives.twofactor.totp.TOTP`), not ours; this
module only names the parameters, turns an aware ``datetime`` into a time
step (RFC 6238 section 4.2, ``T = (now - T0) / X`` with ``T0`` the Unix epoch)
and returns codes as text with their leading zeros.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, Literal, get_args

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.twofactor.hotp import HOTP
from cryptography.hazmat.primitives.twofactor.totp import TOTP

Algorithm = Literal["SHA1", "SHA256", "SHA512"]
"""The HMAC hash of RFC 6238 section 1.2 (and of the Key URI's ``algorithm``)."""

ALGORITHMS: Final[tuple[Algorithm, ...]] = get_args(Algorithm)
DIGITS: Final[tuple[int, ...]] = (6, 8)
"""Code lengths offered: 6 (the authenticator-app default) or 8."""

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""``T0`` of RFC 6238 section 4.1."""

_HASHES: Final[dict[Algorithm, type[hashes.SHA1 | hashes.SHA256 | hashes.SHA512]]] = {
    "SHA1": hashes.SHA1,
    "SHA256": hashes.SHA256,
    "SHA512": hashes.SHA512,
}


def _hash(algorithm: Algorithm) -> hashes.SHA1 | hashes.SHA256 | hashes.SHA512:
    try:
        return _HASHES[algorithm]()
    except KeyError:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}") from None


def hotp(secret: bytes, counter: int, *, digits: int = 6, algorithm: Algorithm = "SHA1") -> str:
    """The RFC 4226 HOTP value of ``counter`` (section 5.3), ``digits`` long with leading zeros.

    Raises:
        ValueError: ``secret`` shorter than 128 bits (RFC 4226 section 4, R6),
            ``digits`` not 6, 7 or 8, an unknown ``algorithm``, or a negative counter.
    """
    if counter < 0:
        raise ValueError("the counter must not be negative")
    return HOTP(secret, digits, _hash(algorithm)).generate(counter).decode("ascii")


def time_step(now: datetime, *, period: int = 30) -> int:
    """The RFC 6238 time step ``T`` holding ``now`` (section 4.2), in exact integer arithmetic.

    Raises:
        ValueError: ``now`` is naive, before the epoch, or ``period`` is not positive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if period < 1:
        raise ValueError("the period must be at least one second")
    elapsed = now - EPOCH
    if elapsed < timedelta(0):
        raise ValueError("now must not be before the Unix epoch")
    return elapsed // timedelta(seconds=period)


def totp(
    secret: bytes, *, at: int, digits: int = 6, algorithm: Algorithm = "SHA1", period: int = 30
) -> str:
    """The RFC 6238 TOTP value at Unix time ``at`` (whole seconds), as in Appendix B.

    Raises:
        ValueError: as :func:`hotp`, or ``at`` negative, or ``period`` not positive.
    """
    if at < 0:
        raise ValueError("the time must not be before the Unix epoch")
    if period < 1:
        raise ValueError("the period must be at least one second")
    generator = TOTP(secret, digits, _hash(algorithm), period)
    return generator.generate(at).decode("ascii")


def totp_at_step(
    secret: bytes, step: int, *, digits: int = 6, algorithm: Algorithm = "SHA1"
) -> str:
    """The TOTP value of time step ``step``: HOTP with the step as counter (section 4.2).

    What verification compares against, one step of the drift window at a time.
    """
    return hotp(secret, step, digits=digits, algorithm=algorithm)
