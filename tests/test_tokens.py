"""JWT issue and verify: signature, expiry, purpose and key rotation."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from keystile.crypto.keyring import KeyRing
from keystile.tokens import InvalidTokenError, TokenCodec

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OLD, NEW = "o" * 40, "n" * 40


def issue(codec: TokenCodec, **overrides: object) -> str:
    values: dict[str, object] = {
        "subject": "user-1",
        "purpose": "access",
        "now": NOW,
        "lifetime": timedelta(hours=1),
        "amr": ["pwd"],
        "strategies": ["password"],
    }
    values.update(overrides)
    return codec.issue(**values).token  # type: ignore[arg-type]


def test_round_trip_carries_every_claim() -> None:
    """sub, jti, iat, exp, purpose, amr, auth_time and strategies survive the trip."""
    codec = TokenCodec(KeyRing([NEW]), issuer="keystile")
    issued = codec.issue(
        subject="user-1",
        purpose="access",
        now=NOW,
        lifetime=timedelta(hours=1),
        amr=["pwd", "otp"],
        strategies=["password", "totp"],
        auth_time=NOW - timedelta(minutes=5),
    )
    claims = codec.decode(issued.token, purpose="access", now=NOW)
    assert claims == issued.claims
    assert claims.expires_at == NOW + timedelta(hours=1)
    assert claims.auth_time == NOW - timedelta(minutes=5)
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert set(payload) >= {
        "sub",
        "jti",
        "iat",
        "exp",
        "purpose",
        "amr",
        "auth_time",
        "iss",
        "aud",
    }


def test_expiry_is_judged_against_the_given_now() -> None:
    """Valid one second before ``exp``, refused at ``exp``."""
    codec = TokenCodec(KeyRing([NEW]), issuer="keystile")
    token = issue(codec)
    codec.decode(token, purpose="access", now=NOW + timedelta(seconds=3599))
    with pytest.raises(InvalidTokenError, match="expired"):
        codec.decode(token, purpose="access", now=NOW + timedelta(hours=1))


def test_a_token_never_verifies_for_another_purpose() -> None:
    """An MFA or OTP token is not an access token."""
    codec = TokenCodec(KeyRing([NEW]), issuer="keystile")
    token = issue(codec, purpose="mfa")
    with pytest.raises(InvalidTokenError, match="purpose"):
        codec.decode(token, purpose="access", now=NOW)


def test_rotation_signs_with_the_first_key_and_verifies_with_any() -> None:
    """Tokens signed before a rotation keep working; removed keys stop them."""
    before = issue(TokenCodec(KeyRing([OLD]), issuer="keystile"))
    rotated = TokenCodec(KeyRing([NEW, OLD]), issuer="keystile")
    rotated.decode(before, purpose="access", now=NOW)
    after = issue(rotated)
    assert jwt.get_unverified_header(after)["kid"] == KeyRing([NEW]).current.kid
    with pytest.raises(InvalidTokenError, match="unknown signing key"):
        TokenCodec(KeyRing([NEW]), issuer="keystile").decode(before, purpose="access", now=NOW)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("attack", ["alg_none", "tampered", "other_issuer", "garbage", "huge"])
def test_forged_tokens_are_refused(attack: str) -> None:
    """alg=none, a modified payload, another issuer, garbage and oversized input all fail."""
    codec = TokenCodec(KeyRing([NEW]), issuer="keystile")
    token = issue(codec)
    header, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    if attack == "alg_none":
        kid = jwt.get_unverified_header(token)["kid"]
        token = f"{_b64({'alg': 'none', 'kid': kid})}.{payload}."
    elif attack == "tampered":
        token = f"{header}.{_b64({**claims, 'sub': 'admin'})}.{signature}"
    elif attack == "other_issuer":
        token = issue(TokenCodec(KeyRing([NEW]), issuer="someone-else"))
    elif attack == "garbage":
        token = "not.a.jwt"
    else:
        token = "a" * 10_000
    with pytest.raises(InvalidTokenError):
        codec.decode(token, purpose="access", now=NOW)


def _signed_with_ring_key(payload: object, *, algorithm: str = "HS256") -> str:
    """A token carrying a valid signature by the ring's key, whatever it says."""
    kid = KeyRing([NEW]).current.kid
    return jwt.api_jws.encode(
        json.dumps(payload).encode(), NEW, algorithm=algorithm, headers={"kid": kid}
    )


VALID_CLAIMS: dict[str, object] = {
    "iss": "keystile",
    "aud": "keystile",
    "sub": "user-1",
    "jti": "j",
    "iat": int(NOW.timestamp()),
    "exp": int(NOW.timestamp()) + 3600,
    "purpose": "access",
}


@pytest.mark.parametrize(
    ("payload", "algorithm"),
    [
        pytest.param({**VALID_CLAIMS, "iss": "other"}, "HS256", id="wrong_issuer"),
        pytest.param({**VALID_CLAIMS, "aud": "other"}, "HS256", id="wrong_audience"),
        pytest.param({**VALID_CLAIMS, "aud": ["other"]}, "HS256", id="wrong_audience_list"),
        pytest.param({**VALID_CLAIMS, "aud": 7}, "HS256", id="audience_not_a_string"),
        *[
            pytest.param(
                {name: value for name, value in VALID_CLAIMS.items() if name != missing},
                "HS256",
                id=f"missing_{missing}",
            )
            for missing in VALID_CLAIMS
        ],
        pytest.param({**VALID_CLAIMS, "sub": 7}, "HS256", id="subject_not_a_string"),
        pytest.param({**VALID_CLAIMS, "exp": "later"}, "HS256", id="exp_not_an_integer"),
        pytest.param({**VALID_CLAIMS, "amr": "pwd"}, "HS256", id="amr_not_a_list"),
        pytest.param([VALID_CLAIMS], "HS256", id="payload_not_an_object"),
        pytest.param(VALID_CLAIMS, "HS512", id="another_hmac_algorithm"),
    ],
)
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512, 40-byte key
def test_validly_signed_but_unacceptable_tokens_are_refused(
    payload: object, algorithm: str
) -> None:
    """A correct signature is not enough: issuer, claims, their types and HS256 are required."""
    codec = TokenCodec(KeyRing([NEW]), issuer="keystile")
    assert codec.decode(_signed_with_ring_key(VALID_CLAIMS), purpose="access", now=NOW).jti == "j"
    with pytest.raises(InvalidTokenError):
        codec.decode(_signed_with_ring_key(payload, algorithm=algorithm), purpose="access", now=NOW)


def test_tokens_carry_the_configured_audience_and_only_it_verifies() -> None:
    """``aud`` is the codec's audience; a token for another audience is refused (item 17)."""
    ours = TokenCodec(KeyRing([NEW]), issuer="keystile", audience="api.example")
    token = issue(ours)
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == "api.example"
    assert ours.decode(token, purpose="access", now=NOW).subject == "user-1"
    theirs = TokenCodec(KeyRing([NEW]), issuer="keystile", audience="other.example")
    with pytest.raises(InvalidTokenError, match="audience"):
        theirs.decode(token, purpose="access", now=NOW)


def test_a_validly_signed_token_without_aud_is_refused() -> None:
    """A token signed by a ring key but carrying no ``aud`` does not verify."""
    codec = TokenCodec(KeyRing([NEW]), issuer="keystile")
    no_audience = {name: value for name, value in VALID_CLAIMS.items() if name != "aud"}
    with pytest.raises(InvalidTokenError, match="aud"):
        codec.decode(_signed_with_ring_key(no_audience), purpose="access", now=NOW)


def test_an_audience_list_holding_ours_verifies() -> None:
    """RFC 7519 allows ``aud`` as a list: it verifies when ours is among them."""
    codec = TokenCodec(KeyRing([NEW]), issuer="keystile")
    token = _signed_with_ring_key({**VALID_CLAIMS, "aud": ["elsewhere", "keystile"]})
    assert codec.decode(token, purpose="access", now=NOW).jti == "j"


def test_leeway_accepts_a_token_expired_by_less_and_refuses_one_beyond() -> None:
    """With 30 s leeway, a token is valid until ``exp + 30 s`` (exclusive), not after."""
    codec = TokenCodec(KeyRing([NEW]), issuer="keystile", leeway=timedelta(seconds=30))
    token = issue(codec)
    expiry = NOW + timedelta(hours=1)
    codec.decode(token, purpose="access", now=expiry + timedelta(seconds=29))
    with pytest.raises(InvalidTokenError, match="expired"):
        codec.decode(token, purpose="access", now=expiry + timedelta(seconds=30))
    strict = TokenCodec(KeyRing([NEW]), issuer="keystile")
    with pytest.raises(InvalidTokenError, match="expired"):
        strict.decode(token, purpose="access", now=expiry)


def test_a_negative_leeway_is_refused() -> None:
    """Leeway only ever widens acceptance by a small, non-negative amount."""
    with pytest.raises(ValueError, match="leeway"):
        TokenCodec(KeyRing([NEW]), issuer="keystile", leeway=timedelta(seconds=-1))
