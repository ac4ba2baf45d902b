"""Pure decisions of the OTP strategy: codes, their normalisation and their stored ids.

The code itself is never stored. Its token id is a keyed hash of
(strategy, identity, normalised code) under the hashing key, so a copy of
the database alone cannot recover a live code, and sign-in finds the row by
recomputing the id: no comparison of the code ever happens in Python. Under
a rotated key ring every key's id is a candidate.
"""

from __future__ import annotations

from keystile.crypto.alphabets import generate_code
from keystile.crypto.hashing import keyed_hash, keyed_hashes
from keystile.crypto.keyring import KeyRing
from keystile.strategies.otp.config import STRATEGY, CodeGenerator, OtpConfig

MAX_CODE_INPUT = 64


def normalize_code(config: OtpConfig, code: str, generator: object | None = None) -> str:
    """The comparable form of a code: a custom ``generator``'s, or trimmed (and upper-cased)."""
    if isinstance(generator, CodeGenerator):
        return generator.normalize(code)
    trimmed = code.strip()
    return trimmed if config.case_sensitive else trimmed.upper()


def new_code(config: OtpConfig, generator: object | None = None) -> str:
    """A fresh code to send (already in normalised form)."""
    if isinstance(generator, CodeGenerator):
        raw = generator.generate(config.length, config.alphabet)
    else:
        raw = generate_code(config.alphabet, config.length)
    return normalize_code(config, raw, generator)


def code_token_id(ring: KeyRing, identity: str, normalised_code: str) -> str:
    """The stored id of a code, under the ring's current key."""
    return keyed_hash(ring.current, STRATEGY, identity, normalised_code)


def candidate_token_ids(ring: KeyRing, identity: str, normalised_code: str) -> list[str]:
    """The ids a submitted code may be stored under, one per ring key."""
    return keyed_hashes(ring, STRATEGY, identity, normalised_code)
