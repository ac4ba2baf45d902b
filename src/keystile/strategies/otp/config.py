"""OTP strategy configuration and its start-up validation (pure).

:func:`configuration_problems` lists every reason a configuration is unsafe
or unwired, each naming the option to change; the runtime refuses to start
while the list is not empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, runtime_checkable

from keystile.crypto.alphabets import ALPHABETS, MIN_CODE_SPACE, code_space, min_length


class Coverage(Protocol):
    """What the start-up check needs to know of the brute-force protections."""

    def covers(self, action: str) -> bool:
        """Whether at least one protection is wired to ``action``."""
        ...

    def audit_log_only(self) -> bool:
        """Whether audit-log protection is the only one."""
        ...


STRATEGY = "otp"
ACTIONS = ("request", "sign_in")


@runtime_checkable
class CodeGenerator(Protocol):
    """A custom code generator.

    With one, the entropy check is skipped: Keystile cannot reason about the
    code space it produces, so the responsibility for enough entropy,
    cryptographic randomness and honouring ``length`` and ``characters``
    moves to its author. ``normalize`` is applied to the generated code and
    to every submitted code, so both sides compare alike.
    """

    def generate(self, length: int, characters: str) -> str: ...

    def normalize(self, code: str) -> str: ...


@dataclass(frozen=True, slots=True)
class OtpConfig:
    """Frozen options of the OTP strategy (defaults as documented in the README).

    Values only: the collaborators (the sender, the brute-force guard, a
    custom code generator) are given to the service, and checked together
    with these values by :func:`configuration_problems`.

    Attributes:
        identity_field: the JSON field holding the identity (``email``).
        lifetime: how long a code is valid.
        length: symbols per code.
        characters: a name from :data:`keystile.crypto.alphabets.ALPHABETS`.
        case_sensitive: when False, codes are trimmed and upper-cased on both sides.
        single_use: when True, a code signs in once.
        registration_enabled: a correct code for an unknown identity creates the user.
        max_attempts_per_code: wrong guesses after which the outstanding code is burned.
    """

    identity_field: str = "email"
    lifetime: timedelta = timedelta(minutes=10)
    length: int = 6
    characters: str = "unambiguous_uppercase"
    case_sensitive: bool = False
    single_use: bool = True
    registration_enabled: bool = False
    max_attempts_per_code: int = 5

    @property
    def alphabet(self) -> str:
        """The symbols codes are drawn from."""
        return ALPHABETS[self.characters]


def configuration_problems(
    config: OtpConfig,
    *,
    guard: Coverage,
    sender: object | None,
    generator: object | None = None,
) -> list[str]:
    """Every problem with ``config`` and the collaborators the service will get, each
    naming the option (and its variable) to change.

    ``guard`` (a :class:`~keystile.limits.protection.BruteForceGuard`, or a
    description of one read from the settings) must protect both actions;
    ``sender`` (or its name) is required; a custom
    ``generator`` (see :class:`CodeGenerator`) must be complete, and skips the
    entropy check.
    """
    problems: list[str] = []
    if config.identity_field != "email":
        problems.append("otp identity_field: only 'email' is supported")
    if sender is None:
        problems.append("otp sender (KEYSTILE_SENDER): a sender is required to deliver codes")
    if config.lifetime <= timedelta(0) or config.lifetime > timedelta(hours=1):
        problems.append(
            "otp lifetime (KEYSTILE_OTP_LIFETIME_SECONDS): must be between 1 second and 1 hour"
        )
    if config.max_attempts_per_code < 1:
        problems.append("otp max_attempts_per_code (KEYSTILE_OTP_MAX_ATTEMPTS): must be >= 1")
    if config.characters not in ALPHABETS:
        problems.append(
            f"otp characters (KEYSTILE_OTP_CHARACTERS): {config.characters!r} is not one of "
            f"{', '.join(sorted(ALPHABETS))}"
        )
    elif generator is None:
        space = code_space(config.alphabet, config.length)
        if space < MIN_CODE_SPACE:
            problems.append(
                f"otp length (KEYSTILE_OTP_LENGTH): {config.length} symbols of "
                f"{config.characters} give {space:,} possible codes, fewer than the "
                f"{MIN_CODE_SPACE:,} required; use a length of at least "
                f"{min_length(config.alphabet)} or a larger character set"
            )
    if generator is not None:
        for method in ("generate", "normalize"):
            if not callable(getattr(generator, method, None)):
                problems.append(
                    f"otp generator: the custom generator has no {method}() method; it must "
                    "provide generate(length, characters) and normalize(code)"
                )
    for action in ACTIONS:
        if not guard.covers(action):
            problems.append(
                f"otp brute-force protection (KEYSTILE_OTP_BRUTE_FORCE): nothing protects the "
                f"{action} action; wire rate_limit (or a custom hook) to both request and "
                "sign_in (audit_log protects sign_in only: it counts failed sign-ins)"
            )
    if config.registration_enabled and guard.audit_log_only():
        problems.append(
            "otp registration (KEYSTILE_OTP_REGISTRATION_ENABLED): audit-log protection alone "
            "cannot protect registration (it counts failures of existing users); add rate_limit "
            "or a custom hook, or turn registration off"
        )
    return problems
