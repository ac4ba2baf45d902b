"""The compact JWS form Keystile verifies itself: strict base64url, HS256, one ring key.

Every way below of writing a token differently from how it was signed is refused,
while the signature would still match or the token would still parse elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import jwt
import pytest

from keystile.crypto.keyring import KeyRing
from keystile.tokens import InvalidTokenError, TokenCodec

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
KEY = "n" * 40
RING = KeyRing([KEY])
CLAIMS: dict[str, object] = {
    "iss": "keystile",
    "aud": "keystile",
    "sub": "user-1",
    "jti": "j",
    "iat": int(NOW.timestamp()),
    "exp": int(NOW.timestamp()) + 3600,
    "purpose": "access",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(header: object, payload: object = CLAIMS, *, raw_header: str | None = None) -> str:
    """A token with exactly this header and payload, HMAC-SHA256-signed by the ring's key."""
    head = raw_header if raw_header is not None else _b64(json.dumps(header).encode())
    body = _b64(json.dumps(payload).encode())
    mac = hmac.digest(KEY.encode(), f"{head}.{body}".encode(), hashlib.sha256)
    return f"{head}.{body}.{_b64(mac)}"


def decode(token: str) -> str:
    return TokenCodec(RING, issuer="keystile").decode(token, purpose="access", now=NOW).jti


KID = RING.current.kid


def test_a_token_signed_by_pyjwt_and_one_signed_by_hand_both_verify() -> None:
    """The verifier is PyJWT-compatible for what Keystile issues (``typ`` may be present)."""
    by_pyjwt = jwt.api_jws.encode(
        json.dumps(CLAIMS).encode(), KEY, algorithm="HS256", headers={"kid": KID}
    )
    assert decode(by_pyjwt) == "j"
    assert decode(signed({"alg": "HS256", "kid": KID})) == "j"


def _with_segment(token: str, index: int, segment: str) -> str:
    parts = token.split(".")
    parts[index] = segment
    return ".".join(parts)


GOOD = signed({"alg": "HS256", "kid": KID})
HEAD, BODY, SIG = GOOD.split(".")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        pytest.param(GOOD + "=", "malformed token", id="padded_signature"),
        pytest.param(_with_segment(GOOD, 0, HEAD + "=="), "malformed token", id="padded_header"),
        pytest.param(GOOD + ".x", "malformed token", id="four_segments"),
        pytest.param(f"{HEAD}.{BODY}", "malformed token", id="two_segments"),
        pytest.param(_with_segment(GOOD, 2, SIG[:-1] + "+"), "malformed token", id="not_base64url"),
        pytest.param(_with_segment(GOOD, 2, SIG + "AA"), "malformed token", id="impossible_length"),
        pytest.param(
            # The last symbol of a 32-byte MAC carries 2 unused bits; setting one keeps the
            # bytes but changes the string: only one spelling of a token is accepted.
            _with_segment(GOOD, 2, SIG[:-1] + chr(ord(SIG[-1]) + 1)),
            "malformed token",
            id="non_canonical_bits",
        ),
        pytest.param(GOOD[:-1] + "é", "malformed token", id="not_ascii"),
        pytest.param(signed(None, raw_header=_b64(b"[1]")), "malformed token", id="header_list"),
        pytest.param(
            signed(None, raw_header=_b64(b"[" * 2000 + b"]" * 2000)),
            "malformed token",
            id="header_nested_deeply",
        ),
        pytest.param(signed({"kid": KID}), "algorithm not allowed", id="no_alg"),
        pytest.param(signed({"alg": "none", "kid": KID}), "algorithm not allowed", id="alg_none"),
        pytest.param(signed({"alg": "HS512", "kid": KID}), "algorithm not allowed", id="alg_hs512"),
        pytest.param(
            signed({"alg": "HS256", "kid": KID, "crit": ["exp"]}),
            "unsupported header parameter",
            id="crit",
        ),
        pytest.param(
            signed({"alg": "HS256", "kid": KID, "b64": False, "crit": ["b64"]}),
            "unsupported header parameter",
            id="unencoded_payload",
        ),
        pytest.param(signed({"alg": "HS256", "kid": 7}), "unknown signing key", id="kid_number"),
        pytest.param(signed({"alg": "HS256"}), "unknown signing key", id="no_kid"),
        pytest.param(
            _with_segment(GOOD, 1, _b64(json.dumps({**CLAIMS, "sub": "admin"}).encode())),
            "bad signature",
            id="payload_changed",
        ),
    ],
)
def test_tokens_written_otherwise_than_signed_are_refused(token: str, reason: str) -> None:
    """Each deviation is refused with its reason (for logs; callers all answer the same)."""
    with pytest.raises(InvalidTokenError) as caught:
        decode(token)
    assert caught.value.reason == reason


def test_the_payload_is_parsed_only_after_the_signature_matched() -> None:
    """A payload that is not JSON, correctly signed, is 'malformed'; unsigned, 'bad signature'."""
    head = _b64(json.dumps({"alg": "HS256", "kid": KID}).encode())
    body = _b64(b"{not json")
    mac = _b64(hmac.digest(KEY.encode(), f"{head}.{body}".encode(), hashlib.sha256))
    with pytest.raises(InvalidTokenError, match="malformed token"):
        decode(f"{head}.{body}.{mac}")
    with pytest.raises(InvalidTokenError, match="bad signature"):
        decode(f"{head}.{body}.{SIG}")
