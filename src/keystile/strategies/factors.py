"""What a strategy hands to the flows: a claimed factor, its check, and the verified factor.

Strategies verify; flows decide. A strategy turns submitted credentials into
a :class:`Claim` (parsed and normalised, nothing checked yet). The flow
counts the attempt, lets the claim do its costly work outside any
transaction (:meth:`Claim.prepare`, e.g. a password hash), and then runs the
returned :class:`FactorCheck` inside the attempt's one write transaction,
where single-use state is consumed atomically. What a
:class:`VerifiedFactor` earns (a session, "second factor needed", a
stepped-up session) is the flow's decision, never the strategy's.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from keystile.store.prepared import Executor
from keystile.store.users import User


@dataclass(frozen=True, slots=True)
class VerifiedFactor:
    """One factor that checked out.

    Attributes:
        user: whom it proves.
        strategy: the Keystile strategy name (``password``, ``otp`` …), for
            ``authentication_strategies``.
        amr: its RFC 8176 authentication method reference value.
        at: when it was verified.
        details: what the caller is told besides the session (a recovery code's
            remaining count and its replacement, for example).
    """

    user: User
    strategy: str
    amr: str
    at: datetime
    details: Mapping[str, Any] = field(default_factory=dict, repr=False)


class FactorCheck(Protocol):
    """The part of a verification that runs inside the attempt's write transaction."""

    def verify(self, conn: Executor, now: datetime) -> VerifiedFactor | None:
        """The verified factor, or ``None`` for any failure (wrong, expired, used, unknown).

        Consumes single-use state (a code) and counts misses in ``conn``; the
        caller's transaction commits them with the rest of the attempt.
        """
        ...


class Claim(Protocol):
    """Submitted credentials of one strategy, parsed but not yet checked."""

    @property
    def strategy(self) -> str:
        """The strategy name, for limits and the audit trail."""
        ...

    @property
    def identity(self) -> str:
        """The normalised identity the attempt is counted against."""
        ...

    @property
    def action(self) -> str:
        """The action whose brute-force limits count the attempt (``sign_in`` …)."""
        ...

    @property
    def audit_action(self) -> str:
        """The action the audit trail records."""
        ...

    @property
    def costly(self) -> bool:
        """Whether :meth:`prepare` is expensive enough that a caller who is locked
        out already should be refused before it runs (a password hash)."""
        ...

    async def prepare(self) -> FactorCheck:
        """Work that must not hold the write lock, done before the transaction."""
        ...


class SecondFactorCheck(Protocol):
    """A factor checked for a user already known (a second factor, a step-up)."""

    @property
    def strategy(self) -> str:
        """The strategy name, for limits and the audit trail."""
        ...

    async def prepare(self, user_id: uuid.UUID) -> SecondFactorCheck:
        """Work that must not hold the write lock (a slow hash), done before the transaction."""
        ...

    def verify(self, conn: Executor, user: User, now: datetime) -> VerifiedFactor | None:
        """The verified factor, or ``None``; consumes single-use state in ``conn``."""
        ...
