"""Identity normalisation: the one function every lookup and brute-force key goes through.

Two spellings that a person would call the same address must map to one
account and to one rate-limit bucket, or an attacker gets a fresh budget of
guesses per spelling (``Victim@Example.COM`` vs ``victim@example.com``).
"""

from __future__ import annotations

import unicodedata

MAX_EMAIL_LENGTH = 320


class InvalidIdentityError(ValueError):
    """The text cannot be an email address; ``reason`` is safe to show to the caller."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def normalize_identity(raw: str) -> str:
    """Trim surrounding whitespace, compose to Unicode NFC and lower-case.

    Idempotent: ``normalize_identity(normalize_identity(x)) == normalize_identity(x)``.
    NFC is applied again after lower-casing because case mapping can decompose
    (``"İ".lower()`` is ``"i"`` plus a combining dot).
    """
    composed = unicodedata.normalize("NFC", raw.strip())
    return unicodedata.normalize("NFC", composed.lower())


def normalize_email(raw: str) -> str:
    """Normalise ``raw`` and check that it has the shape of an email address.

    Deliberately lenient (one ``@`` with text on both sides, no whitespace or
    control characters, at most 320 characters): deliverability is the
    sender's business, and a stricter parser would reject real addresses.

    Raises:
        InvalidIdentityError: with a reason fit for a 400 answer.
    """
    email = normalize_identity(raw)
    if not email:
        raise InvalidIdentityError("must not be empty")
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidIdentityError(f"must be at most {MAX_EMAIL_LENGTH} characters")
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise InvalidIdentityError("must be an email address")
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in email):
        raise InvalidIdentityError("must not contain whitespace or control characters")
    return email
