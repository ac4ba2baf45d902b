"""TOTP secrets sealed for one user under the newest key, and resealed on rotation."""

from __future__ import annotations

import uuid

import pytest

from keystile.crypto.keyring import KeyRing
from keystile.crypto.sealing import UnsealError
from keystile.strategies.totp.core import new_secret
from keystile.strategies.totp.sealing import (
    reseal_secret,
    seal_secret,
    sealing_context,
    unseal_secret,
)

OLD = KeyRing(["o" * 40])
ROTATED = KeyRing(["n" * 40, "o" * 40])
NEW_ONLY = KeyRing(["n" * 40])
ALICE, BOB = uuid.uuid4(), uuid.uuid4()


def test_a_sealed_secret_opens_for_its_user_only() -> None:
    """Sealed for Alice: opens for Alice, not for Bob; the value never shows the secret."""
    secret = new_secret()
    sealed = seal_secret(OLD, secret, user_id=ALICE)
    assert sealed.key_id == OLD.current.kid
    assert secret.hex() not in sealed.value
    assert unseal_secret(OLD, sealed.value, user_id=ALICE) == secret
    with pytest.raises(UnsealError):
        unseal_secret(OLD, sealed.value, user_id=BOB)
    assert sealing_context(ALICE) == f"totp:{ALICE}"


def test_reseal_moves_a_secret_to_the_newest_key() -> None:
    """Resealed under the rotated ring: the new kid, opens once the old key is gone."""
    secret = new_secret()
    sealed = seal_secret(OLD, secret, user_id=ALICE)
    resealed = reseal_secret(ROTATED, sealed.value, user_id=ALICE)
    assert resealed.key_id == NEW_ONLY.current.kid != OLD.current.kid
    assert unseal_secret(NEW_ONLY, resealed.value, user_id=ALICE) == secret
    with pytest.raises(UnsealError):
        unseal_secret(NEW_ONLY, sealed.value, user_id=ALICE)


def test_two_seals_of_one_secret_differ() -> None:
    """A fresh nonce each time: equal secrets are not visible as equal values."""
    secret = new_secret()
    assert (
        seal_secret(OLD, secret, user_id=ALICE).value
        != seal_secret(OLD, secret, user_id=ALICE).value
    )
