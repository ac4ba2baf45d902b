"""Key rings, keyed hashing and sealing."""

from __future__ import annotations

import pytest

from keystile.crypto.hashing import keyed_hash, keyed_hashes
from keystile.crypto.keyring import KeyRing, Secret
from keystile.crypto.sealing import UnsealError, seal, unseal

OLD, NEW = "o" * 40, "n" * 40


def test_secret_and_ring_reprs_never_show_key_material() -> None:
    """A key printed in a log or a traceback shows nothing of its value."""
    ring = KeyRing([NEW])
    assert NEW not in repr(ring)
    assert NEW not in repr(ring.current)
    assert repr(Secret(b"x" * 40)) == "Secret('**********')"


def test_short_keys_and_empty_rings_are_refused() -> None:
    """A key under 32 bytes is a configuration error, as is a ring without keys."""
    with pytest.raises(ValueError, match="at least 32 bytes"):
        KeyRing(["short"])
    with pytest.raises(ValueError, match="at least one key"):
        KeyRing([])


def test_keyed_hash_depends_on_key_and_on_part_boundaries() -> None:
    """Different keys give different hashes; ("ab","c") and ("a","bc") do not collide."""
    new, old = KeyRing([NEW]).current, KeyRing([OLD]).current
    assert keyed_hash(new, "otp", "user", "ABC") != keyed_hash(old, "otp", "user", "ABC")
    assert keyed_hash(new, "ab", "c") != keyed_hash(new, "a", "bc")
    assert len(keyed_hash(new, "x")) == 64


def test_keyed_hashes_cover_every_ring_key_current_first() -> None:
    """After a rotation a lookup still finds values hashed under the old key."""
    rotated = KeyRing([NEW, OLD])
    before = keyed_hash(KeyRing([OLD]).current, "otp", "u", "CODE")
    candidates = keyed_hashes(rotated, "otp", "u", "CODE")
    assert candidates[0] == keyed_hash(rotated.current, "otp", "u", "CODE")
    assert before in candidates


def test_seal_round_trip_and_rotation() -> None:
    """A value sealed under the old key opens after a rotation; new values use the new key."""
    sealed_old = seal(KeyRing([OLD]), b"totp-secret", context="user-1")
    rotated = KeyRing([NEW, OLD])
    assert unseal(rotated, sealed_old, context="user-1") == b"totp-secret"
    sealed_new = seal(rotated, b"totp-secret", context="user-1")
    assert sealed_new.split(".")[1] == rotated.current.kid
    assert b"totp-secret" not in sealed_new.encode()


@pytest.mark.parametrize("mutation", ["context", "tamper", "unknown_key", "garbage"])
def test_unseal_refuses_anything_but_the_original(mutation: str) -> None:
    """Wrong context, a flipped byte, an unknown key or garbage never open."""
    ring = KeyRing([NEW])
    sealed = seal(ring, b"secret", context="user-1")
    context = "user-1"
    if mutation == "context":
        context = "user-2"
    elif mutation == "tamper":
        head, tail = sealed.rsplit(".", 1)
        sealed = head + "." + ("A" if tail[0] != "A" else "B") + tail[1:]
    elif mutation == "unknown_key":
        ring = KeyRing([OLD])
    else:
        sealed = "not-a-sealed-value"
    with pytest.raises(UnsealError):
        unseal(ring, sealed, context=context)
