"""The gate every strategy action passes first: parse the identity, count the attempt.

Shared so that each strategy normalises identities, keys its limits and
records blocked attempts the same way.
"""

from __future__ import annotations

from keystile.clock import Clock
from keystile.errors import InvalidRequestError, TooManyAttemptsError
from keystile.identity import InvalidIdentityError, normalize_email
from keystile.limits.protection import Attempt, BruteForceGuard, DeferredHits
from keystile.store.database import Database
from keystile.strategies.audit_trail import AuditTrail


def parse_identity(raw: str, field: str = "user.email") -> str:
    """Normalise ``raw`` or raise :class:`InvalidRequestError` naming ``field``."""
    try:
        return normalize_email(raw)
    except InvalidIdentityError as error:
        raise InvalidRequestError("The email is not valid.", {field: error.reason}) from None


class AttemptGate:
    """Runs a strategy's brute-force guard and audits the attempts it blocks."""

    def __init__(
        self, *, strategy: str, guard: BruteForceGuard, audit: AuditTrail, clock: Clock
    ) -> None:
        self.strategy = strategy
        self.guard = guard
        self._audit = audit
        self._clock = clock

    async def enter(
        self,
        action: str,
        identity: str,
        client_address: str | None,
        *,
        defer_to: Database | None = None,
    ) -> DeferredHits | None:
        """Count one attempt at ``action`` for the normalised ``identity``.

        ``defer_to``: see :meth:`BruteForceGuard.check`; the hits it returns
        are the caller's to make, and to audit as blocked if they refuse.

        Raises:
            TooManyAttemptsError: a protection denies (the refusal is audited).
            UnavailableError: a protection's store is unreachable.
        """
        now = self._clock.now()
        attempt = Attempt(
            strategy=self.strategy,
            action=action,
            identity=identity,
            client_address=client_address,
            now=now,
        )
        try:
            return await self.guard.check(attempt, defer_to=defer_to)
        except TooManyAttemptsError:
            await self._audit.blocked(
                strategy=self.strategy,
                action=action,
                now=now,
                identity=identity,
                client_address=client_address,
            )
            raise
