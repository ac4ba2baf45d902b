"""Identity normalisation: one account and one rate-limit bucket per address, however spelt."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keystile.identity import InvalidIdentityError, normalize_email, normalize_identity

emails = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=20
    ).filter(lambda s: "@" not in s and s.strip() == s),
    st.from_regex(r"[a-zA-Z0-9]{1,10}\.[a-zA-Z]{2,5}", fullmatch=True),
)


@given(st.text())
def test_normalisation_is_idempotent(raw: str) -> None:
    """Normalising twice changes nothing."""
    once = normalize_identity(raw)
    assert normalize_identity(once) == once


@given(st.text())
def test_result_is_nfc_without_surrounding_space(raw: str) -> None:
    """The result is NFC and has no leading or trailing whitespace."""
    result = normalize_identity(raw)
    assert unicodedata.is_normalized("NFC", result)
    assert result == result.strip()


@given(emails, st.sampled_from(["", " ", "\t", "  \n"]), st.sampled_from(["", " ", "\r\n"]))
def test_case_and_padding_variants_share_one_identity(email: str, left: str, right: str) -> None:
    """Upper-case, lower-case and padded spellings normalise to the same value."""
    expected = normalize_identity(email)
    assert normalize_identity(left + email.upper() + right) == normalize_identity(email.upper())
    assert normalize_identity(left + email + right) == expected


def test_composed_and_decomposed_forms_are_one_identity() -> None:
    """``é`` typed as one code point or as ``e`` + combining accent is one address."""
    composed = "ren\u00e9@example.com"
    decomposed = "rene\u0301@example.com"
    assert normalize_email(composed) == normalize_email(decomposed) == composed


def test_victim_spellings_share_one_identity() -> None:
    """The brute-force example from the issue."""
    assert normalize_email("Victim@Example.COM") == normalize_email(" victim@example.com ")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("no-at-sign", "must be an email address"),
        ("@example.com", "must be an email address"),
        ("user@", "must be an email address"),
        ("us er@example.com", "must not contain whitespace or control characters"),
        ("user\x00@example.com", "must not contain whitespace or control characters"),
        ("a" * 320 + "@example.com", "must be at most 320 characters"),
    ],
)
def test_malformed_emails_are_refused_with_a_reason(raw: str, reason: str) -> None:
    """Each malformed address gets a reason fit for a 400 answer."""
    with pytest.raises(InvalidIdentityError) as caught:
        normalize_email(raw)
    assert caught.value.reason == reason
