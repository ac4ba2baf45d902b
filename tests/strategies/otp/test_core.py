"""Pure OTP core: code generation, normalisation and stored ids."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from keystile.crypto.alphabets import ALPHABETS, code_space, generate_code, min_length
from keystile.crypto.keyring import KeyRing
from keystile.strategies.otp import core
from keystile.strategies.otp.config import OtpConfig

RING = KeyRing(["k" * 40])


def config(**overrides: object) -> OtpConfig:
    return OtpConfig(**overrides)  # type: ignore[arg-type]


def test_alphabets_have_the_documented_sizes() -> None:
    """21, 27, 26 and 10 symbols; no ambiguous letters in the unambiguous sets."""
    assert {name: len(set(symbols)) for name, symbols in ALPHABETS.items()} == {
        "unambiguous_uppercase": 21,
        "unambiguous_alphanumeric": 27,
        "uppercase_letters_only": 26,
        "digits_only": 10,
    }
    assert not set("ILOSZ012 5") & set(ALPHABETS["unambiguous_alphanumeric"])
    assert code_space(ALPHABETS["unambiguous_uppercase"], 6) == 85_766_121
    assert min_length(ALPHABETS["digits_only"]) == 6


def test_generation_is_uniform_over_the_alphabet() -> None:
    """Each of 21 symbols appears about equally often (chi-square well under the 0.1% bound)."""
    alphabet = ALPHABETS["unambiguous_uppercase"]
    counts = Counter("".join(generate_code(alphabet, 6) for _ in range(7_000)))
    assert set(counts) == set(alphabet)
    expected = 42_000 / len(alphabet)
    chi_square = sum((counts[symbol] - expected) ** 2 / expected for symbol in alphabet)
    assert chi_square < 45.3  # 20 degrees of freedom, p = 0.001


@given(st.text(max_size=20))
def test_normalisation_is_idempotent_and_case_insensitive_by_default(code: str) -> None:
    """Trim and upper-case; applying it twice changes nothing."""
    settings = config()
    once = core.normalize_code(settings, code)
    assert core.normalize_code(settings, once) == once
    assert core.normalize_code(settings, code.lower()) == core.normalize_code(
        settings, code.upper()
    )


def test_case_sensitive_codes_keep_their_case() -> None:
    """case_sensitive: trimmed only."""
    assert core.normalize_code(config(case_sensitive=True), " AbC ") == "AbC"


def test_stored_id_depends_on_identity_code_and_key() -> None:
    """The id changes with any input; the code cannot be read back from it."""
    base = core.code_token_id(RING, "a@example.com", "XKPTMH")
    assert base != core.code_token_id(RING, "b@example.com", "XKPTMH")
    assert base != core.code_token_id(RING, "a@example.com", "XKPTMA")
    assert base != core.code_token_id(KeyRing(["j" * 40]), "a@example.com", "XKPTMH")
    assert "XKPTMH" not in base
    rotated = KeyRing(["n" * 40, "k" * 40])
    assert base in core.candidate_token_ids(rotated, "a@example.com", "XKPTMH")


def test_new_codes_use_the_configured_length_and_alphabet() -> None:
    """Length and character set are honoured; a custom generator is normalised too."""
    code = core.new_code(config(length=8, characters="digits_only"))
    assert len(code) == 8
    assert code.isdigit()

    class Lower:
        def generate(self, length: int, characters: str) -> str:
            return " abc "

        def normalize(self, code: str) -> str:
            return code.strip().upper()

    assert core.new_code(config(lifetime=timedelta(minutes=1)), Lower()) == "ABC"
