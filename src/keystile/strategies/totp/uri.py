"""The ``otpauth://`` Key URI an authenticator app enrols from (pure).

Google Authenticator's Key URI format
(https://github.com/google/google-authenticator/wiki/Key-Uri-Format)::

    otpauth://totp/Issuer:account?secret=BASE32&issuer=Issuer[&algorithm=…&digits=…&period=…]

The secret is base32 without padding; ``algorithm``, ``digits`` and
``period`` appear only when they differ from the defaults (SHA1, 6, 30), since
some apps ignore them and would silently show wrong codes — better that such
a URI be visibly non-default. Issuer and account are percent-encoded
(RFC 3986, UTF-8; ``:`` as ``%3A``, a space as ``%20``), so the one literal
``:`` of the label separates them, and the label's issuer and the
``issuer`` parameter always agree.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from keystile.strategies.totp.rfc6238 import ALGORITHMS, Algorithm

SCHEME = "otpauth"
DEFAULT_ALGORITHM: Algorithm = "SHA1"
DEFAULT_DIGITS = 6
DEFAULT_PERIOD = 30


@dataclass(frozen=True, slots=True)
class KeyUri:
    """What a Key URI carries. ``repr`` never shows the secret."""

    secret: bytes = field(repr=False)
    issuer: str
    account: str
    algorithm: Algorithm = DEFAULT_ALGORITHM
    digits: int = DEFAULT_DIGITS
    period: int = DEFAULT_PERIOD


def base32_secret(secret: bytes) -> str:
    """``secret`` as authenticator apps take it: base32, upper case, no ``=`` padding."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def _encode(text: str) -> str:
    return quote(text, safe="", encoding="utf-8")


def key_uri(
    secret: bytes,
    *,
    issuer: str,
    account: str,
    algorithm: Algorithm = DEFAULT_ALGORITHM,
    digits: int = DEFAULT_DIGITS,
    period: int = DEFAULT_PERIOD,
) -> str:
    """The ``otpauth://totp/…`` URI for enrolling ``secret``.

    Args:
        secret: the shared secret (raw bytes).
        issuer: the service, shown by the app (label prefix and ``issuer`` parameter).
        account: the user's name at the service (typically the email address).
        algorithm, digits, period: the authenticator's parameters.

    Raises:
        ValueError: an empty issuer or account.
    """
    if not issuer or not account:
        raise ValueError("a Key URI needs an issuer and an account")
    parameters = [("secret", base32_secret(secret)), ("issuer", _encode(issuer))]
    if algorithm != DEFAULT_ALGORITHM:
        parameters.append(("algorithm", algorithm))
    if digits != DEFAULT_DIGITS:
        parameters.append(("digits", str(digits)))
    if period != DEFAULT_PERIOD:
        parameters.append(("period", str(period)))
    query = "&".join(f"{name}={value}" for name, value in parameters)
    return f"{SCHEME}://totp/{_encode(issuer)}:{_encode(account)}?{query}"


def parse_key_uri(uri: str) -> KeyUri:
    """Read a TOTP Key URI back (for tests, and for checking what an app will see).

    Accepts a padded or unpadded, upper- or lower-case secret, and a label
    without an issuer prefix when the ``issuer`` parameter is given.

    Raises:
        ValueError: not an ``otpauth://totp/`` URI, no or a bad secret, a label
            issuer that disagrees with the ``issuer`` parameter, or bad parameters.
    """
    parts = urlsplit(uri)
    if parts.scheme != SCHEME or parts.netloc != "totp":
        raise ValueError("not an otpauth://totp/ URI")
    label = parts.path.removeprefix("/")
    prefix, separator, account_part = label.partition(":")
    label_issuer = unquote(prefix) if separator else None
    account = unquote(account_part if separator else prefix)
    parameters: dict[str, str] = {}
    for pair in parts.query.split("&") if parts.query else ():
        name, _, value = pair.partition("=")
        if name in parameters:
            raise ValueError(f"parameter {name!r} given twice")
        parameters[name] = unquote(value)
    issuer = parameters.get("issuer", label_issuer)
    if issuer is None or not account:
        raise ValueError("the URI names no issuer or no account")
    if label_issuer is not None and label_issuer != issuer:
        raise ValueError("the label's issuer and the issuer parameter disagree")
    encoded = parameters.get("secret", "").upper().rstrip("=")
    try:
        secret = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    except binascii.Error:
        raise ValueError("the secret is not base32") from None
    if not secret:
        raise ValueError("the URI has no secret")
    algorithm = parameters.get("algorithm", DEFAULT_ALGORITHM).upper()
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    try:
        digits = int(parameters.get("digits", DEFAULT_DIGITS))
        period = int(parameters.get("period", DEFAULT_PERIOD))
    except ValueError:
        raise ValueError("digits and period must be whole numbers") from None
    return KeyUri(
        secret=secret,
        issuer=issuer,
        account=account,
        algorithm=algorithm,
        digits=digits,
        period=period,
    )
