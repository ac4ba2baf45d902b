"""JWTs signed with asymmetric keys, and their JSON Web Key Set (RFC 7515, 7517, 7518, 8037).

Pure: keys are generated with :mod:`cryptography` (its randomness), signing
and the JWK form are PyJWT's, time is a parameter. The OAuth token endpoint
signs access and ID tokens with a private key from here, and publishes the
public halves (``/.well-known/jwks.json``) so a resource server can verify a
token on its own, with any JOSE library, knowing only the JWKS URL.

Algorithms: ``ES256`` (P-256, the default: short keys and signatures),
``EdDSA`` (Ed25519, RFC 8037) and ``RS256`` (RSA 2048, for clients that
support nothing else).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

SigningAlgorithm = Literal["ES256", "EdDSA", "RS256"]
ALGORITHMS: Final[tuple[SigningAlgorithm, ...]] = ("ES256", "EdDSA", "RS256")

_PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private signing key with its public identifier.

    Attributes:
        kid: the ``kid`` header of every token it signs (a fingerprint of the public key).
        algorithm: the JWS ``alg`` it signs with.
        private_pem: PKCS#8 PEM of the private key (never logged: ``repr`` hides it).
    """

    kid: str
    algorithm: SigningAlgorithm
    private_pem: bytes = field(repr=False)


def generate_key(algorithm: SigningAlgorithm) -> SigningKey:
    """A new private key for ``algorithm``, with its ``kid``.

    Raises:
        ValueError: an algorithm Keystile does not sign with.
    """
    private: _PrivateKey
    if algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}")
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SigningKey(kid=_kid(private), algorithm=algorithm, private_pem=pem)


def _kid(private: _PrivateKey) -> str:
    """A short fingerprint of the public key: stable, and safe to publish."""
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(public).hexdigest()[:16]


def _load(key: SigningKey) -> _PrivateKey:
    loaded = serialization.load_pem_private_key(key.private_pem, password=None)
    if not isinstance(
        loaded, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    ):
        raise ValueError("not a signing key Keystile uses")
    return loaded


def public_jwk(key: SigningKey) -> dict[str, Any]:
    """The public half of ``key`` as a JWK (RFC 7517 §4) with ``kid``, ``alg`` and ``use``."""
    public = _load(key).public_key()
    jwk: dict[str, Any]
    if isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ed25519.Ed25519PublicKey):
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    jwk.update({"kid": key.kid, "alg": key.algorithm, "use": "sig"})
    return dict(jwk)


def key_set(keys: Iterable[SigningKey]) -> dict[str, Any]:
    """The JWK Set (RFC 7517 §5) publishing the public halves of ``keys``."""
    return {"keys": [public_jwk(key) for key in keys]}


def sign(claims: Mapping[str, Any], key: SigningKey, *, media_type: str = "JWT") -> str:
    """``claims`` as a compact JWS signed by ``key``, ``kid`` and ``typ`` in its header.

    ``media_type`` is ``at+jwt`` for access tokens (RFC 9068 §2.1), ``JWT`` otherwise.
    """
    return jwt.encode(
        dict(claims),
        _load(key),
        algorithm=key.algorithm,
        headers={"kid": key.kid, "typ": media_type},
        json_encoder=_CompactEncoder,
    )


class _CompactEncoder(json.JSONEncoder):
    """JSON without spaces: a token a few bytes shorter."""

    item_separator = ","
    key_separator = ":"


def verify(
    token: str,
    keys: Iterable[SigningKey],
    *,
    issuer: str,
    audience: str,
    now: float,
) -> dict[str, Any]:
    """The claims of a token signed by one of ``keys`` (found by ``kid``), for ``audience``.

    ``now`` is the Unix time the expiry is judged at.

    Raises:
        jwt.InvalidTokenError: malformed, an unknown ``kid``, a bad signature,
            expired, or another issuer's or audience's.
    """
    header = jwt.get_unverified_header(token)
    key = next((candidate for candidate in keys if candidate.kid == header.get("kid")), None)
    if key is None:
        # An InvalidTokenError like every other refusal (InvalidKeyError is not one).
        raise jwt.InvalidSignatureError("unknown kid")
    claims: dict[str, Any] = jwt.decode(
        token,
        _load(key).public_key(),
        algorithms=[key.algorithm],
        issuer=issuer,
        audience=audience,
        options={"require": ["exp", "iat", "sub"], "verify_exp": False},
    )
    if float(claims["exp"]) <= now:
        raise jwt.ExpiredSignatureError("expired")
    return claims
