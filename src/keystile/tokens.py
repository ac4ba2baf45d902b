"""JWT issue and verify (pure: the time comes in as ``now``).

Tokens are HS256 JWTs signed with the current key of the signing ring and
carrying ``kid`` so any ring key verifies them. Claims: ``iss``, ``aud``, ``sub``,
``jti``, ``iat``, ``exp``, ``purpose``, ``amr`` (RFC 8176 method values),
``auth_time`` and ``ks_strategies`` (Keystile strategy names, for the
``authentication_strategies`` answer field). A token for one purpose never
verifies for another. Revocation is checked above this module, against the
token store, because it needs I/O.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt
from jwt.algorithms import HMACAlgorithm

from keystile.crypto.keyring import KeyRing

ALGORITHM: Final = "HS256"
MAX_TOKEN_LENGTH: Final = 8192

PURPOSE_ACCESS: Final = "access"

#: RFC 8176 authentication method reference values Keystile emits.
AMR_PASSWORD: Final = "pwd"  # noqa: S105 (an RFC 8176 method name)
AMR_OTP: Final = "otp"
AMR_MFA: Final = "mfa"


class InvalidTokenError(ValueError):
    """The token is malformed, forged, expired or for another purpose.

    ``reason`` is for logs and tests; callers answer with one undifferentiated
    ``unauthenticated`` error so a client learns nothing from it.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified content of a token."""

    subject: str
    jti: str
    purpose: str
    issued_at: datetime
    expires_at: datetime
    auth_time: datetime
    amr: tuple[str, ...]
    strategies: tuple[str, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An encoded token and the claims it carries."""

    token: str = field(repr=False)
    claims: TokenClaims


def new_jti() -> str:
    """A random token id (192 bits)."""
    return secrets.token_urlsafe(24)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(value: object, name: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidTokenError(f"claim {name} is not an integer")
    return datetime.fromtimestamp(value, UTC)


def _strings(value: object, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidTokenError(f"claim {name} is not a list of strings")
    return tuple(value)


class _KeyCheckedOnce(HMACAlgorithm):
    """HS256 that vets each key once rather than on every token.

    PyJWT checks on every call that an HMAC secret is not a PEM, SSH or DER
    public key (the last by trying to parse it, twice): about a tenth of the
    CPU of a whole sign-in request. The ring's keys never change, so the
    verdict is kept per key.
    """

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._vetted: dict[bytes, bytes] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        raw = key.encode() if isinstance(key, str) else key
        vetted = self._vetted.get(raw)
        if vetted is None:
            vetted = self._vetted[raw] = super().prepare_key(raw)
        return vetted


#: RFC 7515 §2 base64url: the URL-safe alphabet, no padding, no whitespace.
_BASE64URL: Final = re.compile(rb"[A-Za-z0-9_-]*")


def _segment(data: bytes) -> bytes:
    """One strictly encoded base64url segment of a compact JWS, decoded.

    Refused (``InvalidTokenError``): characters outside the alphabet, padding,
    an impossible length, and non-canonical trailing bits, so exactly one
    string encodes each value.
    """
    if len(data) % 4 == 1 or _BASE64URL.fullmatch(data) is None:
        raise InvalidTokenError("malformed token")
    try:
        decoded = base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        raise InvalidTokenError("malformed token") from None
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != data:
        raise InvalidTokenError("malformed token")
    return decoded


def _json(data: bytes) -> object:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidTokenError("malformed token") from None


_REQUIRED_CLAIMS: Final = ("sub", "jti", "iat", "exp", "purpose", "iss", "aud")
_KNOWN_CLAIMS: Final = frozenset(
    {"iss", "aud", "sub", "jti", "iat", "exp", "purpose", "amr", "auth_time", "ks_strategies"}
)


class TokenCodec:
    """Encodes and decodes Keystile JWTs with one signing key ring and issuer.

    Tokens are signed through PyJWT's JWS layer (an instance of our own that
    knows HS256 only) and verified here, HS256 only, whatever the token's
    header asks for (:meth:`_verified_payload`); the claims are checked here
    too, against the injected ``now``.
    """

    def __init__(
        self,
        ring: KeyRing,
        *,
        issuer: str,
        audience: str = "keystile",
        leeway: timedelta = timedelta(0),
    ) -> None:
        """``audience`` is the ``aud`` issued and required; ``leeway`` widens ``exp``.

        Raises:
            ValueError: a negative ``leeway``.
        """
        if leeway < timedelta(0):
            raise ValueError("token leeway must not be negative")
        self._ring = ring
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._jws = jwt.PyJWS(algorithms=[])
        self._jws.register_algorithm(ALGORITHM, _KeyCheckedOnce())

    def issue(
        self,
        *,
        subject: str,
        purpose: str,
        now: datetime,
        lifetime: timedelta,
        amr: Sequence[str],
        strategies: Sequence[str],
        auth_time: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
        jti: str | None = None,
    ) -> IssuedToken:
        """Sign a new token; whole-second times, as JWT requires.

        ``jti`` defaults to a fresh random id; pass one when its row was
        stored before signing (see :func:`new_jti`).
        """
        issued_at = now.replace(microsecond=0)
        claims = TokenClaims(
            subject=subject,
            jti=jti or new_jti(),
            purpose=purpose,
            issued_at=issued_at,
            expires_at=issued_at + lifetime,
            auth_time=(auth_time or issued_at).replace(microsecond=0),
            amr=tuple(amr),
            strategies=tuple(strategies),
            extra=dict(extra or {}),
        )
        payload: dict[str, Any] = {
            **claims.extra,
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "jti": claims.jti,
            "iat": _epoch(claims.issued_at),
            "exp": _epoch(claims.expires_at),
            "purpose": purpose,
            "amr": list(claims.amr),
            "auth_time": _epoch(claims.auth_time),
            "ks_strategies": list(claims.strategies),
        }
        key = self._ring.current
        token = self._jws.encode(
            json.dumps(payload, separators=(",", ":")).encode(),
            key.secret.value,
            algorithm=ALGORITHM,
            headers={"kid": key.kid},
        )
        return IssuedToken(token=token, claims=claims)

    def _verified_payload(self, token: str) -> object:
        """The JSON payload of a compact JWS signed HS256 by a ring key (RFC 7515 §5.2).

        Verified here rather than by PyJWT, whose strict base64url check walks
        each segment character by character in Python and which parses the
        token twice (once for the ``kid``): two thirds of a token check's CPU.
        Accepted: exactly three segments, strict base64url, a header object
        with ``alg`` HS256, a ``kid`` of the ring, no ``crit`` and no ``b64``
        (extensions Keystile never issues), and an HMAC-SHA256 that matches
        (compared in constant time). The payload is parsed only after that.

        Raises:
            InvalidTokenError: anything else.
        """
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidTokenError("malformed token") from None
        parts = raw.split(b".")
        if len(parts) != 3:
            raise InvalidTokenError("malformed token")
        header_segment, payload_segment, signature_segment = parts
        header = _json(_segment(header_segment))
        if not isinstance(header, dict):
            raise InvalidTokenError("malformed token")
        if header.get("alg") != ALGORITHM:
            raise InvalidTokenError("algorithm not allowed")
        if "crit" in header or "b64" in header:
            raise InvalidTokenError("unsupported header parameter")
        kid = header.get("kid")
        key = self._ring.find(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidTokenError("unknown signing key")
        signature = _segment(signature_segment)
        expected = hmac.digest(key.secret.value, header_segment + b"." + payload_segment, "sha256")
        if not hmac.compare_digest(expected, signature):
            raise InvalidTokenError("bad signature")
        return _json(_segment(payload_segment))

    def decode(self, token: str, *, purpose: str, now: datetime) -> TokenClaims:
        """Verify signature, issuer, audience, expiry (``now`` + leeway) and purpose.

        Raises:
            InvalidTokenError: for any token that must not be accepted.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidTokenError("token too long")
        payload = self._verified_payload(token)
        if not isinstance(payload, dict):
            raise InvalidTokenError("payload is not a JSON object")
        missing = [name for name in _REQUIRED_CLAIMS if name not in payload]
        if missing:
            raise InvalidTokenError(f"missing claims {', '.join(missing)}")
        if payload["iss"] != self._issuer:
            raise InvalidTokenError("wrong issuer")
        audience = payload["aud"]
        if isinstance(audience, list):
            if self._audience not in audience:
                raise InvalidTokenError("wrong audience")
        elif audience != self._audience:
            raise InvalidTokenError("wrong audience")
        expires_at = _moment(payload.get("exp"), "exp")
        if now >= expires_at + self._leeway:
            raise InvalidTokenError("expired")
        if payload.get("purpose") != purpose:
            raise InvalidTokenError("wrong purpose")
        subject, jti = payload.get("sub"), payload.get("jti")
        if not isinstance(subject, str) or not isinstance(jti, str):
            raise InvalidTokenError("claims sub and jti must be strings")
        return TokenClaims(
            subject=subject,
            jti=jti,
            purpose=purpose,
            issued_at=_moment(payload.get("iat"), "iat"),
            expires_at=expires_at,
            auth_time=_moment(payload.get("auth_time", payload.get("iat")), "auth_time"),
            amr=_strings(payload.get("amr", []), "amr"),
            strategies=_strings(payload.get("ks_strategies", []), "ks_strategies"),
            extra={name: value for name, value in payload.items() if name not in _KNOWN_CLAIMS},
        )
