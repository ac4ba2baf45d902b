"""Brute-force protection: the policies every strategy runs before it verifies anything.

A :class:`BruteForceGuard` holds one or more protections, each wired to some
actions of a strategy:

- :class:`RateLimitProtection`: a moving-window limit per normalised
  identity (never one shared bucket), optionally also per client address;
- :class:`AuditLogProtection`: blocks after N failures within a window,
  counted from the audit table;
- :class:`HookProtection`: any callable deciding allow or deny.

Every attempt is counted atomically before any verdict is given, so a
burst of parallel wrong guesses cannot slip past the limit, and the
identity's count is independent of which code is outstanding (requesting a
new code resets nothing). A protection whose counts live in the attempt's
database counts inside the attempt's own transaction; the others count just
before it. A blocked caller gets the same
:class:`~keystile.errors.TooManyAttemptsError` whether or not the identity
exists. A limiter that cannot be reached raises
:class:`~keystile.errors.UnavailableError`: nothing is accepted.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar, Protocol

from keystile.limits.addresses import address_bucket
from keystile.limits.rate import Rate, RateLimiter
from keystile.rates import parse_rate as parse_rate  # where the composition root reads it
from keystile.store.audit import AuditStore, nth_latest_failure
from keystile.store.database import Database
from keystile.store.prepared import Executor


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt at an action, as the protections see it.

    ``identity`` is always normalised; ``client_address`` is the raw peer
    address (limits may key on it; the audit log stores it under its privacy mode).
    """

    strategy: str
    action: str
    identity: str
    client_address: str | None
    now: datetime


class Protection(Protocol):
    """A brute-force protection wired to some actions.

    Every protection can count an attempt on its own (:meth:`check`, before
    the attempt's transaction). One whose counts live in a database may also
    declare (:meth:`counts_in`) that it counts inside a write transaction of
    that database (:meth:`check_in`), so the attempt is counted and verified
    under one write-lock turn, atomically with everything else it writes.
    """

    @property
    def actions(self) -> frozenset[str]: ...

    def counts_in(self, db: Database) -> bool:
        """Whether :meth:`check_in` and :meth:`peek_in` may run in ``db``'s transactions."""
        ...

    async def check(self, attempt: Attempt) -> int | None:
        """Count ``attempt``; ``None`` to allow, or seconds until a retry may succeed."""
        ...

    def check_in(self, conn: Executor, attempt: Attempt) -> int | None:
        """:meth:`check` inside the attempt's write transaction (only where :meth:`counts_in`)."""
        ...

    def peek_in(self, conn: Executor, attempt: Attempt) -> int | None:
        """Would :meth:`check_in` refuse? Records nothing (only where :meth:`counts_in`)."""
        ...


class _CountsOnItsOwn:
    """The in-transaction members of a protection that has no database of its own."""

    def counts_in(self, db: Database) -> bool:
        """Never."""
        return False

    def check_in(self, conn: Executor, attempt: Attempt) -> int | None:
        """Not offered (see :meth:`Protection.check_in`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot count inside a transaction")

    def peek_in(self, conn: Executor, attempt: Attempt) -> int | None:
        """Not offered (see :meth:`Protection.peek_in`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot count inside a transaction")


@dataclass(frozen=True, slots=True)
class RateLimitProtection:
    """Per-identity (and optionally per-address) moving-window limits.

    ``rates`` maps each protected action to its rate. Keys look like
    ``otp:sign_in:id:<identity>`` and ``otp:sign_in:ip:<bucket>``, where the
    bucket is :func:`~keystile.limits.addresses.address_bucket` of the client
    address (IPv6 by /64). The per-address limit is for spraying one guess
    across many identities from one place: an action named in
    ``address_rates`` is always limited per address at that rate; with
    ``by_client_address``, every other action is too, at ten times its
    identity rate. It
    counts inside the attempt's transaction exactly when its limiter does.
    """

    limiter: RateLimiter
    rates: Mapping[str, Rate]
    by_client_address: bool = False
    address_rates: Mapping[str, Rate] = field(default_factory=dict)

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(self.rates)

    def _address_rate(self, action: str) -> Rate:
        if action in self.address_rates:
            return self.address_rates[action]
        rate = self.rates[action]
        return Rate(limit=rate.limit * 10, window=rate.window)

    def hits(self, attempt: Attempt) -> list[tuple[str, Rate]]:
        """The limiter keys and rates ``attempt`` counts against (none if its action is unrated)."""
        rate = self.rates.get(attempt.action)
        if rate is None:
            return []
        prefix = f"{attempt.strategy}:{attempt.action}"
        keyed = [(f"{prefix}:id:{attempt.identity}", rate)]
        by_address = self.by_client_address or attempt.action in self.address_rates
        if by_address and attempt.client_address:
            bucket = address_bucket(attempt.client_address)
            keyed.append((f"{prefix}:ip:{bucket}", self._address_rate(attempt.action)))
        return keyed

    def counts_in(self, db: Database) -> bool:
        return self.limiter.counts_in(db)

    async def check(self, attempt: Attempt) -> int | None:
        waits = []
        for key, rate in self.hits(attempt):  # every key counts the attempt
            decision = await self.limiter.hit(key, rate, now=attempt.now)
            if not decision.allowed:
                waits.append(decision.retry_after)
        return max(waits, default=None)

    def check_in(self, conn: Executor, attempt: Attempt) -> int | None:
        decisions = [
            self.limiter.hit_in(conn, key, rate, attempt.now) for key, rate in self.hits(attempt)
        ]
        return max((d.retry_after for d in decisions if not d.allowed), default=None)

    def peek_in(self, conn: Executor, attempt: Attempt) -> int | None:
        decisions = [
            self.limiter.peek_in(conn, key, rate, attempt.now) for key, rate in self.hits(attempt)
        ]
        return max((d.retry_after for d in decisions if not d.allowed), default=None)


@dataclass(frozen=True, slots=True)
class AuditLogProtection:
    """Block an identity after ``max_failures`` failed sign-ins of the strategy within ``window``.

    Counted from the audit table, so it holds across processes with no other
    store. Only failed *sign-ins* count: a code request for an unknown
    identity is not a failure, or the protection would lock out unknown
    identities and never known ones, telling them apart. Inside the
    attempt's transaction (after the identity's lock) the count sees every
    earlier attempt of that identity, so parallel guesses cannot slip past
    it; the failure being answered is recorded in that same transaction.
    """

    audit: AuditStore
    max_failures: int = 5
    window: timedelta = timedelta(minutes=5)
    protected: frozenset[str] = frozenset({"sign_in"})
    #: The audited actions whose failures count (default: the protected ones). A second
    #: factor's attempts are all counted as ``verify`` but audited as what they were
    #: (``verify``, ``step_up``, ``confirm_setup``).
    counted: frozenset[str] | None = None

    #: The actions it protects by default: failed sign-ins are what it counts.
    protected_actions: ClassVar[frozenset[str]] = frozenset({"sign_in"})

    @property
    def actions(self) -> frozenset[str]:
        return self.protected

    def counts_in(self, db: Database) -> bool:
        return db is self.audit.db

    def _wait(self, nth: datetime | None, now: datetime) -> int | None:
        if nth is None:
            return None
        # The block lifts when this failure leaves the window.
        return max(1, math.ceil((nth + self.window - now).total_seconds()))

    async def check(self, attempt: Attempt) -> int | None:
        if attempt.action not in self.protected:
            return None
        nth = await self.audit.nth_latest_failure(
            identity=attempt.identity,
            strategy=attempt.strategy,
            since=attempt.now - self.window,
            n=self.max_failures,
            actions=self.counted or self.protected,
        )
        return self._wait(nth, attempt.now)

    def check_in(self, conn: Executor, attempt: Attempt) -> int | None:
        if attempt.action not in self.protected:
            return None
        nth = nth_latest_failure(
            conn,
            identity=attempt.identity,
            strategy=attempt.strategy,
            since=attempt.now - self.window,
            n=self.max_failures,
            actions=self.counted or self.protected,
        )
        return self._wait(nth, attempt.now)

    def peek_in(self, conn: Executor, attempt: Attempt) -> int | None:
        return self.check_in(conn, attempt)  # it records nothing anyway


HookResult = bool | Awaitable[bool]


@dataclass(frozen=True, slots=True)
class HookProtection(_CountsOnItsOwn):
    """A custom decision: ``hook(attempt)`` returns (or awaits to) True to allow."""

    hook: Callable[[Attempt], HookResult]
    #: Every action of every strategy by default (second factors count as ``verify``).
    protected: frozenset[str] = frozenset({"request", "sign_in", "register", "verify"})
    retry_after: int = 60

    @property
    def actions(self) -> frozenset[str]:
        return self.protected

    async def check(self, attempt: Attempt) -> int | None:
        if attempt.action not in self.protected:
            return None
        result = self.hook(attempt)
        allowed = await result if inspect.isawaitable(result) else result
        return None if allowed else self.retry_after


class BruteForceGuard:
    """The protections of one strategy, run together before each attempt.

    Each protection wired to the attempt's action counts it once: on its own
    (:meth:`check_alone`, before the attempt's transaction) or, where it
    declares it can, inside that transaction (:meth:`counted_in`). The
    caller (:class:`keystile.strategies.attempts.AttemptGate`) decides,
    audits and raises a refusal in one place.
    """

    def __init__(self, protections: Iterable[Protection]) -> None:
        self.protections = tuple(protections)

    def covers(self, action: str) -> bool:
        """Whether at least one protection is wired to ``action``."""
        return any(action in protection.actions for protection in self.protections)

    def audit_log_only(self) -> bool:
        """Whether every protection is an :class:`AuditLogProtection`."""
        return bool(self.protections) and all(
            isinstance(protection, AuditLogProtection) for protection in self.protections
        )

    def counted_in(self, attempt: Attempt, db: Database) -> tuple[Protection, ...]:
        """The protections of ``attempt`` that count inside ``db``'s write transactions."""
        return tuple(
            protection
            for protection in self.protections
            if attempt.action in protection.actions and protection.counts_in(db)
        )

    async def check_alone(self, attempt: Attempt, db: Database) -> int | None:
        """Count ``attempt`` with every protection that cannot count inside ``db``.

        All of them run (so each counts the attempt); the longest wait wins.

        Raises:
            UnavailableError: a protection's store is unreachable.
        """
        waits = [
            wait
            for protection in self.protections
            if attempt.action in protection.actions and not protection.counts_in(db)
            if (wait := await protection.check(attempt)) is not None
        ]
        return max(waits, default=None)
