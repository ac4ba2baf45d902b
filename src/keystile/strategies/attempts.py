"""The gate every strategy action passes first: parse the identity, count the attempt.

Shared so that each strategy normalises identities, keys its limits and
records blocked attempts the same way. A refusal is decided, audited and
raised here and nowhere else:

1. :meth:`AttemptGate.enter` counts the attempt with every protection that
   cannot count inside the database (memory, Redis, hooks) and returns an
   :class:`Admission`;
2. the caller's write transaction starts with :meth:`Admission.count_in`,
   which counts it with the protections that can (the database limiter, the
   audit log) and, if anything refuses, records the blocked attempt there;
3. after the commit, :meth:`Admission.settle` raises the refusal.

So every attempt, blocked or not, is one write transaction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from keystile.errors import InvalidRequestError, TooManyAttemptsError
from keystile.identity import InvalidIdentityError, normalize_email
from keystile.limits.protection import Attempt, BruteForceGuard, Protection
from keystile.store.audit import insert_event
from keystile.store.database import Database
from keystile.store.prepared import Executor
from keystile.strategies.audit_trail import AuditTrail


def parse_identity(raw: str, field: str = "user.email") -> str:
    """Normalise ``raw`` or raise :class:`InvalidRequestError` naming ``field``."""
    try:
        return normalize_email(raw)
    except InvalidIdentityError as error:
        raise InvalidRequestError("The email is not valid.", {field: error.reason}) from None


@dataclass(frozen=True, slots=True)
class Admission:
    """An attempt counted so far, and what its transaction must still count.

    Attributes:
        attempt: the attempt.
        refused: seconds to wait if a protection counted on its own refused.
    """

    attempt: Attempt
    refused: int | None
    _inside: tuple[Protection, ...]
    _audit: AuditTrail

    @property
    def open(self) -> bool:
        """Whether nothing has refused the attempt yet."""
        return self.refused is None

    def peek_in(self, conn: Executor) -> Admission:
        """Refuse now, recording nothing, if an in-transaction protection would refuse."""
        if self.refused is not None:
            return self
        waits = [w for p in self._inside if (w := p.peek_in(conn, self.attempt)) is not None]
        return dataclasses.replace(self, refused=max(waits, default=None))

    def count_in(self, conn: Executor) -> int | None:
        """The first step of the attempt's write transaction: count, and audit a refusal.

        Returns ``None`` to go on, or the seconds to wait; in that case the
        blocked attempt is already recorded in ``conn`` and the caller writes
        nothing else (nothing is verified).
        """
        wait = self.refused
        if wait is None:
            waits = [w for p in self._inside if (w := p.check_in(conn, self.attempt)) is not None]
            wait = max(waits, default=None)
        if wait is not None:
            insert_event(conn, self._audit.blocked_event(self.attempt))
        return wait

    @staticmethod
    def settle(wait: int | None) -> None:
        """After the commit: raise the refusal :meth:`count_in` recorded, if any.

        Raises:
            TooManyAttemptsError: the attempt was refused.
        """
        if wait is not None:
            raise TooManyAttemptsError(retry_after=wait)


class AttemptGate:
    """Runs one strategy's brute-force guard for the attempts on one database."""

    def __init__(
        self, *, strategy: str, guard: BruteForceGuard, audit: AuditTrail, db: Database
    ) -> None:
        self.strategy = strategy
        self.guard = guard
        self._audit = audit
        self._db = db

    async def enter(
        self, action: str, identity: str, client_address: str | None, *, now: datetime
    ) -> Admission:
        """Count one attempt at ``action`` for the normalised ``identity`` where it
        cannot be counted inside the transaction; see the module docstring.

        Raises:
            UnavailableError: a protection's store is unreachable.
        """
        attempt = Attempt(
            strategy=self.strategy,
            action=action,
            identity=identity,
            client_address=client_address,
            now=now,
        )
        refused = await self.guard.check_alone(attempt, self._db)
        return Admission(
            attempt=attempt,
            refused=refused,
            _inside=self.guard.counted_in(attempt, self._db),
            _audit=self._audit,
        )

    async def peek(self, admission: Admission) -> Admission:
        """:meth:`Admission.peek_in` in a read of its own, before costly work."""
        if not admission.open or not admission._inside:
            return admission
        return await self._db.query(admission.peek_in)
