"""Argon2id password hashing."""

from __future__ import annotations

from keystile.crypto.passwords import PRESETS, PasswordHasher


def test_hash_is_argon2id_and_verifies() -> None:
    """Hashes are Argon2id, salted, and verify only the right password."""
    hasher = PasswordHasher.from_preset("test")
    first, second = hasher.hash("correct horse"), hasher.hash("correct horse")
    assert first.startswith("$argon2id$")
    assert first != second
    assert hasher.verify(first, "correct horse")
    assert not hasher.verify(first, "Correct horse")


def test_unknown_account_check_fails_after_doing_the_work() -> None:
    """``verify_or_dummy`` with no stored hash is always False."""
    hasher = PasswordHasher.from_preset("test")
    assert hasher.verify_or_dummy(None, "anything") is False


def test_garbage_hash_is_a_mismatch_not_a_crash() -> None:
    """A corrupted stored hash fails verification instead of raising."""
    hasher = PasswordHasher.from_preset("test")
    assert hasher.verify("not-a-hash", "x") is False


def test_rehash_is_needed_when_parameters_change() -> None:
    """Hashes made with the cheap preset are flagged for rehash under the default one."""
    cheap = PasswordHasher.from_preset("test").hash("pw")
    assert PasswordHasher(PRESETS["test"]).needs_rehash(cheap) is False
    assert PasswordHasher(PRESETS["rfc9106_low_memory"]).needs_rehash(cheap) is True
