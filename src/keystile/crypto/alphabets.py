"""Code alphabets, uniform code generation and the entropy floor for short codes.

Short codes have little entropy by design; what keeps them safe is that the
code space is large enough for the few guesses the brute-force limits allow.
The floor of 1,000,000 possible codes follows NIST SP 800-63B §5.1.3.2
(at least 20 bits for an out-of-band or look-up secret guessed online).
"""

from __future__ import annotations

import secrets
import string
from typing import Final

#: Letters minus the ones people misread (I, L, O, S, Z): 21 symbols.
UNAMBIGUOUS_UPPERCASE: Final = "ABCDEFGHJKMNPQRTUVWXY"

ALPHABETS: Final[dict[str, str]] = {
    "unambiguous_uppercase": UNAMBIGUOUS_UPPERCASE,
    "unambiguous_alphanumeric": UNAMBIGUOUS_UPPERCASE + "346789",
    "uppercase_letters_only": string.ascii_uppercase,
    "digits_only": string.digits,
}

MIN_CODE_SPACE: Final = 1_000_000


def code_space(alphabet: str, length: int) -> int:
    """How many distinct codes of ``length`` symbols ``alphabet`` gives."""
    space: int = len(set(alphabet)) ** length
    return space


def min_length(alphabet: str, floor: int = MIN_CODE_SPACE) -> int:
    """The shortest code length whose code space reaches ``floor``."""
    length = 1
    while code_space(alphabet, length) < floor:
        length += 1
    return length


def generate_code(alphabet: str, length: int) -> str:
    """A code of ``length`` symbols drawn independently and uniformly from ``alphabet``.

    ``secrets.choice`` draws with ``secrets.randbelow`` (rejection sampling),
    so there is no modulo bias whatever the alphabet size.
    """
    if length < 1 or not alphabet:
        raise ValueError("a code needs a length of at least 1 and a non-empty alphabet")
    return "".join(secrets.choice(alphabet) for _ in range(length))
