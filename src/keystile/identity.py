"""Identity normalisation: the one function every lookup and brute-force key goes through.

Two spellings that a person would call the same address must map to one
account and to one rate-limit bucket, or an attacker gets a fresh budget of
guesses per spelling (``Victim@Example.COM`` vs ``victim@example.com``).

An identity is also where codes are mailed, so it must be exactly one plain
mailbox: text such as ``<attacker@evil.com>ceo@corp.com`` or
``a@x.io,b@y.io`` must never reach a mail server, which could read it as a
different or several recipients.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

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
    """Normalise ``raw`` and check that it is exactly one bare email address.

    Accepted: one RFC 5321/6531 addr-spec (``local@domain``), checked by
    :mod:`email_validator` on syntax alone (no DNS, so this stays pure and
    fast). Refused: display names and angle brackets (``Name <a@b.io>``),
    comments (``a@b.io (comment)``), lists (``a@x.io,b@y.io``), quoted local
    parts (``"x"@y.io``), bracketed IP domains, domains without a dot and
    special-use domains (``.local``, ``.localhost``, ``.test``, ``.invalid``,
    ``.onion``, ``.arpa``), and anything over 320 characters. Each of those
    could make a mail server deliver somewhere other than the one mailbox
    the identity names, or cannot receive mail at all.

    The result is the canonical form: trimmed, Unicode NFC, local part and
    domain lower-cased, and an internationalised domain in its Unicode form
    (IDNA 2008 / UTS #46), so ``a@bücher.example``, ``A@BÜCHER.example`` and
    ``a@xn--bcher-kva.example`` are one identity, stored as
    ``a@bücher.example``. Idempotent: normalising a result returns it
    unchanged.

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
    try:
        checked = validate_email(
            email,
            check_deliverability=False,
            allow_smtputf8=True,
            allow_quoted_local=False,
            allow_display_name=False,
            allow_domain_literal=False,
            allow_empty_local=False,
        )
    except EmailNotValidError as error:
        # The library's explanation names only the caller's own characters.
        raise InvalidIdentityError(f"must be one plain email address: {error}") from None
    canonical = normalize_identity(f"{checked.local_part}@{checked.domain}")
    if len(canonical) > MAX_EMAIL_LENGTH:
        raise InvalidIdentityError(f"must be at most {MAX_EMAIL_LENGTH} characters")
    return canonical
