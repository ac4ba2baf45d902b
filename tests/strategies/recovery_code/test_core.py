"""Recovery codes: generation, normalisation, display and the stored (hashed) form."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keystile.crypto.keyring import KeyRing
from keystile.crypto.passwords import PasswordHasher
from keystile.strategies.recovery_code import core
from keystile.strategies.recovery_code.config import ALPHABET, RecoveryCodeConfig

ALICE = uuid.UUID("00000000-0000-4000-8000-000000000001")
BOB = uuid.UUID("00000000-0000-4000-8000-000000000002")
KEY_A = "h" * 40
KEY_B = "k" * 40
CODE = "0123456789ABCDEF"
DISPLAY_FORM = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")

codes = st.text(alphabet=ALPHABET, min_size=16, max_size=16)


def test_the_alphabet_is_crockford_base32() -> None:
    """32 symbols: the digits and the letters without I, L, O and U."""
    assert len(ALPHABET) == len(set(ALPHABET)) == 32
    assert set(ALPHABET).isdisjoint("ILOU")


def test_a_batch_is_ten_distinct_codes_in_display_form() -> None:
    """Defaults: 10 codes, each XXXX-XXXX-XXXX-XXXX of Crockford symbols, none repeated."""
    batch = core.generate_batch(RecoveryCodeConfig())
    assert len(batch) == 10
    assert len(set(batch)) == 10
    assert all(DISPLAY_FORM.match(code) for code in batch)


def test_no_code_repeats_across_100_batches() -> None:
    """1,000 codes from 100 batches are all different."""
    seen = [code for _ in range(100) for code in core.generate_batch(RecoveryCodeConfig())]
    assert len(seen) == 1000
    assert len(set(seen)) == 1000


def test_batch_size_mode_and_group_size_shape_the_batch() -> None:
    """batch_size sets the count, single_code issues one, group_size the display groups."""
    assert len(core.generate_batch(RecoveryCodeConfig(batch_size=3))) == 3
    assert len(core.generate_batch(RecoveryCodeConfig(mode="single_code"))) == 1
    (short,) = core.generate_batch(
        RecoveryCodeConfig(mode="single_code", length=8, group_size=3, storage="argon2")
    )
    assert re.fullmatch(r"\w{3}-\w{3}-\w{2}", short)


def test_a_short_format_still_gives_distinct_codes() -> None:
    """Two-symbol codes (1,024 of them): a batch of 100 is still 100 different codes."""
    batch = core.generate_batch(RecoveryCodeConfig(batch_size=100, length=2, group_size=2))
    assert len(set(batch)) == 100


@pytest.mark.parametrize(
    "typed",
    [
        "0123-4567-89AB-CDEF",
        "0123456789ABCDEF",
        "0123-4567-89ab-cdef",
        "0123 4567 89ab cdef",
        "  0123-4567 89AB\tCDEF  ",
        "O123-4567-89AB-CDEF",  # letter O for zero
        "o123-4567-89ab-cdef",
        "0I23-4567-89AB-CDEF",  # letter I for one
        "0i23-4567-89ab-cdef",
        "0L23-4567-89AB-CDEF",  # letter L for one
        "0l23-4567-89ab-cdef",
        "--0123--4567--89AB--CDEF--",
    ],
)
def test_normalisation_variants_give_the_same_code(typed: str) -> None:
    """Case, spaces and hyphens are ignored; I and L read as 1, O as 0."""
    assert core.normalize(typed) == CODE


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "0123-4567-89AB-CDE",  # 15 symbols
        "0123-4567-89AB-CDEF0",  # 17 symbols
        "0123-4567-89AB-CDEU",  # U is not in the alphabet
        "0123-4567-89AB-CDE!",
        "0123_4567_89AB_CDEF",
        "0123-4567-89AB-CDE\u0131",  # dotless i upper-cases to I: refused, not read as 1
        "\uff10123-4567-89AB-CDEF",  # full-width zero
        "0123-4567-89AB-CDEF\n",
        "0" * 16 + " " * 300,  # too long to look at
    ],
)
def test_malformed_input_is_not_a_code(typed: str) -> None:
    """Wrong length or a symbol outside the alphabet after normalising: None (400, no attempt)."""
    assert core.normalize(typed) is None


def test_normalize_follows_the_configured_length() -> None:
    """A custom length is what normalize expects."""
    assert core.normalize("abcd-efgh", length=8) == "ABCDEFGH"
    assert core.normalize("abcd-efgh") is None


@given(codes)
def test_display_then_normalize_gives_the_code_back(code: str) -> None:
    """Round trip: the display form of any code normalises to that code."""
    shown = core.display(code)
    assert len(shown) == 19
    assert core.normalize(shown) == code
    assert core.normalize(shown.lower()) == code


@given(codes)
def test_any_string_of_the_alphabet_of_the_right_length_is_its_own_normal_form(code: str) -> None:
    """Every 16-symbol string over the alphabet is a code already in normal form."""
    assert core.normalize(code) == code


@given(st.text(max_size=40))
def test_normalize_never_fails_and_answers_only_codes(raw: str) -> None:
    """Arbitrary text: None or a 16-symbol string of the alphabet, never an exception."""
    result = core.normalize(raw)
    assert result is None or (len(result) == 16 and set(result) <= set(ALPHABET))


def test_the_stored_hash_is_hmac_sha256_over_purpose_user_and_code() -> None:
    """Known answer: HMAC-SHA256(key, len-prefixed purpose, user id, normalised code)."""
    parts = (core.PURPOSE, str(ALICE), CODE)
    message = b"".join(len(part).to_bytes(4, "big") + part.encode() for part in parts)
    expected = hmac.new(KEY_A.encode(), message, hashlib.sha256).hexdigest()
    key = KeyRing([KEY_A]).current
    assert core.code_hash(key, ALICE, CODE) == expected
    assert expected == "1b79c4f7882cbb04bd8b13c3c4a33779beeec06d989e09755b1daf2a27f16db8"


def test_the_hash_differs_per_user_and_per_key() -> None:
    """One code stored for two users, or under two keys, has different hashes."""
    key_a, key_b = KeyRing([KEY_A, KEY_B])
    hashes = {
        core.code_hash(key_a, ALICE, CODE),
        core.code_hash(key_a, BOB, CODE),
        core.code_hash(key_b, ALICE, CODE),
        core.code_hash(key_b, BOB, CODE),
    }
    assert len(hashes) == 4
    assert CODE not in "".join(hashes)


def test_candidates_cover_every_ring_key_current_first() -> None:
    """After a rotation a code hashed under the old key is among the candidates."""
    old_ring = KeyRing([KEY_A])
    rotated = KeyRing([KEY_B, KEY_A])
    [(stored, kid)] = core.hashes_for_storage(old_ring, ALICE, [CODE])
    assert kid == old_ring.current.kid
    candidates = core.candidate_hashes(rotated, ALICE, CODE)
    assert candidates == [
        core.code_hash(rotated.current, ALICE, CODE),
        stored,
    ]


def test_argon2_storage_verifies_the_code_for_its_user_only() -> None:
    """Argon2id form: the right code and user verify; another code, user or dropped key do not."""
    hasher = PasswordHasher.from_preset("test")
    ring = KeyRing([KEY_A])
    stored = core.argon2_hash(hasher, ring.current, ALICE, "ABCD1234")
    assert stored.startswith("$argon2id$")
    assert len(stored) <= 128
    assert "ABCD1234" not in stored
    row = (stored, ring.current.kid)
    assert core.argon2_verify(hasher, ring, row, ALICE, "ABCD1234") is True
    assert core.argon2_verify(hasher, ring, row, ALICE, "ABCD1235") is False
    assert core.argon2_verify(hasher, ring, row, BOB, "ABCD1234") is False
    assert core.argon2_verify(hasher, KeyRing([KEY_B, KEY_A]), row, ALICE, "ABCD1234") is True
    assert core.argon2_verify(hasher, KeyRing([KEY_B]), row, ALICE, "ABCD1234") is False


def test_an_argon2_hash_with_real_parameters_fits_the_column() -> None:
    """The RFC 9106 low-memory preset's hash fits code_hash (String(128))."""
    hasher = PasswordHasher.from_preset("rfc9106_low_memory")
    assert len(core.argon2_hash(hasher, KeyRing([KEY_A]).current, ALICE, CODE)) <= 128
