"""Identity normalisation: one account and one rate-limit bucket per address, however spelt."""

from __future__ import annotations

import subprocess
import sys
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


@pytest.mark.parametrize(
    "raw",
    [
        "<attacker@evil.com>ceo@corp.com",
        "a@x.io,b@y.io,c@z.io",
        "a@x.io;b@y.io",
        '"quoted"@x.io',
        '"a@evil.com"@corp.com',
        "Name <a@b.io>",
        "<a@b.io>",
        "a@b.io (comment)",
        "(comment)a@b.io",
        "a@b.io(comment)",
        "a@[127.0.0.1]",
        "a..b@x.io",
        "a@x",
        "a@localhost",
        "a@corp.local",
        "a@x.invalid",
        "a@@x.io",
        "a@x@y.io",
        "a@-x.io",
        "a@xn--zz.example",
    ],
)
def test_anything_but_one_bare_address_is_refused(raw: str) -> None:
    """Display names, comments, lists, quoting, literals and non-mail domains never pass.

    Each of these could make a mail server deliver somewhere other than the one mailbox
    the identity names (``<attacker@evil.com>ceo@corp.com`` mails the attacker), or key a
    rate-limit bucket of its own for one victim.
    """
    with pytest.raises(InvalidIdentityError) as caught:
        normalize_email(raw)
    assert caught.value.reason.startswith("must ")


def test_unicode_and_punycode_domains_are_one_identity() -> None:
    """An internationalised domain has one canonical spelling: Unicode NFC, lower-cased."""
    canonical = "jürgen@bücher.example"
    spellings = [
        "jürgen@bücher.example",
        "jürgen@xn--bcher-kva.example",
        "JÜRGEN@XN--BCHER-KVA.EXAMPLE",
        " Jürgen@BÜCHER.example\t",
        "ju\u0308rgen@bu\u0308cher.example",
    ]
    assert {normalize_email(raw) for raw in spellings} == {canonical}
    assert normalize_email(canonical) == canonical


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice@Example.com", "alice@example.com"),
        ("  ALICE@EXAMPLE.COM\r\n", "alice@example.com"),
        ("alice+tag@example.com", "alice+tag@example.com"),
        ("o'brien@example.co.uk", "o'brien@example.co.uk"),
        ("first.last@sub.example.org", "first.last@sub.example.org"),
        ("a" * 64 + "@example.com", "a" * 64 + "@example.com"),
    ],
)
def test_ordinary_addresses_are_accepted_in_one_form(raw: str, expected: str) -> None:
    """Real-world addresses still pass, case and padding variants share one identity."""
    assert normalize_email(raw) == expected


def test_a_refusal_says_why() -> None:
    """The reason names the problem in words fit for the ``fields`` of a 400 answer."""
    with pytest.raises(InvalidIdentityError) as caught:
        normalize_email('"quoted"@x.io')
    assert caught.value.reason.startswith("must be one plain email address: ")
    assert "Quoting" in caught.value.reason


@given(emails)
def test_accepted_addresses_are_bare_and_stable(raw: str) -> None:
    """Whatever is accepted is one bare ``local@domain`` and normalises to itself."""
    try:
        email = normalize_email(raw)
    except InvalidIdentityError:
        return
    assert email.count("@") == 1
    assert not set(email) & set(' <>(),;:"[]\\')
    assert normalize_email(email) == email
    assert email == normalize_identity(email)


def test_importing_identity_pulls_in_no_network_modules() -> None:
    """Validation is pure: no DNS resolver is loaded, even after a call."""
    code = (
        "import sys\n"
        "from keystile.identity import normalize_email\n"
        "normalize_email('a@xn--bcher-kva.example')\n"
        "print(sorted(m for m in ('dns', 'dns.resolver', 'email_validator.deliverability')"
        " if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
