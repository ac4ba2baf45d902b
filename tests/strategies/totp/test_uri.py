"""The otpauth Key URI: exact form, defaults left out, percent-encoding that round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keystile.strategies.totp.uri import KeyUri, base32_secret, key_uri, parse_key_uri

SECRET = b"12345678901234567890"  # GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ


def test_the_default_uri_is_exact_and_leaves_default_parameters_out() -> None:
    """SHA1, 6 digits, 30 s: only secret and issuer are given."""
    assert key_uri(SECRET, issuer="Example", account="alice@example.com") == (
        "otpauth://totp/Example:alice%40example.com"
        "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example"
    )


def test_non_default_parameters_are_given() -> None:
    """SHA256, 8 digits and 60 s appear as algorithm, digits and period."""
    uri = key_uri(SECRET, issuer="Example", account="bob", algorithm="SHA256", digits=8, period=60)
    assert uri == (
        "otpauth://totp/Example:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example"
        "&algorithm=SHA256&digits=8&period=60"
    )


def test_the_secret_is_unpadded_base32() -> None:
    """A secret whose base32 would end in padding has no ``=`` in the URI."""
    assert base32_secret(b"\x00" * 21) == "A" * 34
    assert key_uri(b"\xff" * 21, issuer="X", account="y") == (
        "otpauth://totp/X:y?secret=7777777777777777777777777777777774&issuer=X"
    )


def test_special_characters_are_percent_encoded_and_round_trip() -> None:
    """Spaces, ``:``, ``@``, ``&``, ``=`` and non-ASCII are encoded; the label has one ``:``."""
    uri = key_uri(SECRET, issuer="Acme: Dév & Co", account="zoë:x@exämple.com")
    assert uri.startswith(
        "otpauth://totp/Acme%3A%20D%C3%A9v%20%26%20Co:zo%C3%AB%3Ax%40ex%C3%A4mple.com?"
    )
    assert "&issuer=Acme%3A%20D%C3%A9v%20%26%20Co" in uri
    assert parse_key_uri(uri) == KeyUri(
        secret=SECRET, issuer="Acme: Dév & Co", account="zoë:x@exämple.com"
    )


def test_an_empty_issuer_or_account_is_refused() -> None:
    """Both name the entry in the app; neither may be empty."""
    with pytest.raises(ValueError, match="issuer and an account"):
        key_uri(SECRET, issuer="", account="a")
    with pytest.raises(ValueError, match="issuer and an account"):
        key_uri(SECRET, issuer="I", account="")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://totp/I:a?secret=AAAA&issuer=I", "not an otpauth"),
        ("otpauth://hotp/I:a?secret=AAAA&issuer=I", "not an otpauth"),
        ("otpauth://totp/I:a?issuer=I", "no secret"),
        ("otpauth://totp/I:a?secret=!!&issuer=I", "not base32"),
        ("otpauth://totp/I:a?secret=AAAAAAAA&issuer=J", "disagree"),
        ("otpauth://totp/a?secret=AAAAAAAA", "no issuer"),
        ("otpauth://totp/I:a?secret=AAAAAAAA&issuer=I&algorithm=MD5", "unknown algorithm"),
        ("otpauth://totp/I:a?secret=AAAAAAAA&issuer=I&digits=six", "whole numbers"),
        ("otpauth://totp/I:a?secret=AAAAAAAA&secret=BBBBBBBB&issuer=I", "twice"),
    ],
)
def test_parse_refuses_bad_uris(uri: str, message: str) -> None:
    """Wrong scheme or type, missing or bad secret, disagreeing issuers, bad parameters."""
    with pytest.raises(ValueError, match=message):
        parse_key_uri(uri)


NAMES = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40)


@given(
    secret=st.binary(min_size=20, max_size=64),
    issuer=NAMES,
    account=NAMES,
    algorithm=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
    digits=st.sampled_from([6, 8]),
    period=st.integers(min_value=1, max_value=120),
)
def test_any_names_and_parameters_round_trip(
    secret: bytes, issuer: str, account: str, algorithm: str, digits: int, period: int
) -> None:
    """Whatever the issuer and account hold, parsing the URI gives every field back."""
    uri = key_uri(
        secret,
        issuer=issuer,
        account=account,
        algorithm=algorithm,  # type: ignore[arg-type]
        digits=digits,
        period=period,
    )
    assert uri.isascii()
    assert uri.count(":") == 2  # the scheme's and the label's, nothing else
    assert parse_key_uri(uri) == KeyUri(
        secret=secret,
        issuer=issuer,
        account=account,
        algorithm=algorithm,  # type: ignore[arg-type]
        digits=digits,
        period=period,
    )
