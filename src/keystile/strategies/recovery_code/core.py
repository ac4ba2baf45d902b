"""Pure decisions of the recovery-code strategy: codes, their normal form and their stored form.

A code is ``length`` symbols of Crockford's base32 (:data:`ALPHABET`), drawn
with :mod:`secrets`, shown in groups (``XXXX-XXXX-XXXX-XXXX``). What users
type is normalised before anything else (:func:`normalize`): case, spaces
and hyphens do not matter, and Crockford's look-alikes are read as the
digits they resemble (I and L as 1, O as 0). Input that cannot be a code
after that is not a guess: the caller answers 400 ``invalid_request`` and
counts no attempt.

The code itself is never stored. Its stored form is, in ``keyed`` storage,
an HMAC-SHA256 under the hashing key over a purpose string, the user id and
the normalised code (:func:`code_hash`): a copy of the database alone gives
nothing back, one code stored for two users has two hashes, and a submitted
code is found by recomputing its hash under each key of the ring
(:func:`candidate_hashes`) and looking the hashes up in a unique index, so a
verification costs the same whatever the number of stored codes.

``argon2`` storage (for short custom formats, under 64 bits) peppers the
code the same way and then hashes it with Argon2id and a random salt
(:func:`argon2_hash`). A salted hash cannot be looked up: a verification
runs :func:`argon2_verify` on each unused code of the user (at most the
batch size, each one a full Argon2id computation) and consumes the one that
matched by its stored hash.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from typing import Final

from keystile.crypto.alphabets import generate_code
from keystile.crypto.hashing import keyed_hash
from keystile.crypto.keyring import Key, KeyRing
from keystile.crypto.passwords import PasswordHasher
from keystile.strategies.recovery_code.config import ALPHABET, RecoveryCodeConfig

#: Separates these hashes from every other keyed hash made with the same key
#: (an OTP's token id, a client-address hash): same key, different purpose.
PURPOSE: Final = "keystile:recovery_code:v1"

DEFAULT_LENGTH: Final = 16
DEFAULT_GROUP_SIZE: Final = 4

#: Longer input is refused before any work: a 64-symbol code with a separator
#: after every symbol still fits.
MAX_INPUT: Final = 256

_IGNORED: Final = " \t-"
_MAP: Final = str.maketrans(
    {
        **{letter: letter.upper() for letter in "abcdefghjkmnpqrstvwxyz"},
        "i": "1",
        "I": "1",
        "l": "1",
        "L": "1",
        "o": "0",
        "O": "0",
        **dict.fromkeys(_IGNORED),
    }
)
_SYMBOLS: Final = frozenset(ALPHABET)


def new_code(length: int = DEFAULT_LENGTH) -> str:
    """One code in normal form: ``length`` symbols drawn uniformly from :data:`ALPHABET`."""
    return generate_code(ALPHABET, length)


def generate_batch(config: RecoveryCodeConfig) -> list[str]:
    """``config.codes_per_batch`` distinct new codes, in display form.

    Distinct within the batch (a repeat, at 80 bits never seen in practice,
    would be drawn again; with a short custom format it could happen).
    These are the only plain copies: they go into the one answer that
    creates them and nowhere else.
    """
    codes: dict[str, None] = {}
    while len(codes) < config.codes_per_batch:
        codes[new_code(config.length)] = None
    return [display(code, config.group_size) for code in codes]


def normalize(raw: str, *, length: int = DEFAULT_LENGTH) -> str | None:
    """The normal form of typed input, or ``None`` when it cannot be a code.

    Upper-cases, drops spaces, tabs and hyphens, and maps Crockford's
    look-alikes (I and L to 1, O to 0). ``None`` for anything that is not
    ``length`` symbols of :data:`ALPHABET` afterwards, a U included.
    Non-ASCII input is refused outright, so no Unicode look-alike (a
    dotless i that upper-cases to I, a full-width digit) is read as a
    symbol. Such input is malformed, not a wrong guess: it spends no attempt.
    """
    if len(raw) > MAX_INPUT or not raw.isascii():
        return None
    code = raw.translate(_MAP)
    if len(code) != length or not _SYMBOLS.issuperset(code):
        return None
    return code


def display(code: str, group_size: int = DEFAULT_GROUP_SIZE) -> str:
    """``code`` in groups of ``group_size`` joined by hyphens: ``XXXX-XXXX-XXXX-XXXX``."""
    return "-".join(code[index : index + group_size] for index in range(0, len(code), group_size))


def code_hash(key: Key, user_id: uuid.UUID | str, normalised: str) -> str:
    """The keyed stored form of ``normalised`` for ``user_id`` under ``key`` (64 hex digits)."""
    return keyed_hash(key, PURPOSE, str(user_id), normalised)


def hashes_for_storage(
    ring: KeyRing, user_id: uuid.UUID | str, normalised_codes: Sequence[str]
) -> list[tuple[str, str]]:
    """``(code_hash, key_id)`` of each code under the ring's current key, for the store."""
    key = ring.current
    return [(code_hash(key, user_id, code), key.kid) for code in normalised_codes]


def candidate_hashes(ring: KeyRing, user_id: uuid.UUID | str, normalised: str) -> list[str]:
    """Every hash a submitted code may be stored under: one per ring key, current first.

    Codes hashed before a key rotation keep working until their key leaves the ring.
    """
    return [code_hash(key, user_id, normalised) for key in ring]


def argon2_hash(hasher: PasswordHasher, key: Key, user_id: uuid.UUID | str, normalised: str) -> str:
    """The ``argon2`` stored form: Argon2id (random salt) of the code's keyed hash.

    The pepper keeps a stolen database useless without the key; Argon2id
    makes each offline guess costly should the key leak too. Store it with
    ``key.kid``, which :func:`argon2_verify` needs.
    """
    return hasher.hash(code_hash(key, user_id, normalised))


def argon2_verify(
    hasher: PasswordHasher,
    ring: KeyRing,
    stored: tuple[str, str],
    user_id: uuid.UUID | str,
    normalised: str,
) -> bool:
    """Whether ``normalised`` is the code behind one ``(stored_hash, key_id)`` row.

    False when the row's key is no longer in the ring. The caller runs this
    over every unused code of the user (at most the batch size; see the
    module docstring) and consumes the matching row by its stored hash.
    """
    stored_hash, key_id = stored
    key = ring.find(key_id)
    if key is None:
        return False
    return hasher.verify(stored_hash, code_hash(key, user_id, normalised))


def new_batch_id() -> str:
    """A random id for one generation, so the codes of a batch can be told apart from the next."""
    return secrets.token_hex(16)
