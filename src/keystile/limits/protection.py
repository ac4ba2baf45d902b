"""Brute-force protection: the policies every strategy runs before it verifies anything.

A :class:`BruteForceGuard` holds one or more protections, each wired to some
actions of a strategy:

- :class:`RateLimitProtection`: a moving-window limit per normalised
  identity (never one shared bucket), optionally also per client address;
- :class:`AuditLogProtection`: blocks after N failures within a window,
  counted from the audit table;
- :class:`HookProtection`: any callable deciding allow or deny.

:meth:`BruteForceGuard.check` runs *before* the credential is verified and
counts the attempt atomically, so a burst of parallel wrong guesses cannot
slip past the limit, and the identity's count is independent of which code
is outstanding (requesting a new code resets nothing). A blocked caller gets
the same :class:`~keystile.errors.TooManyAttemptsError` whether or not the
identity exists. A limiter that cannot be reached raises
:class:`~keystile.errors.UnavailableError`: nothing is accepted.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from keystile.errors import TooManyAttemptsError
from keystile.limits.addresses import address_bucket
from keystile.limits.database import DatabaseRateLimiter
from keystile.limits.rate import Rate, RateLimiter
from keystile.store.audit import AuditStore
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
    """A brute-force protection wired to some actions."""

    @property
    def actions(self) -> frozenset[str]: ...

    async def check(self, attempt: Attempt) -> int | None:
        """Count ``attempt``; ``None`` to allow, or seconds until a retry may succeed."""
        ...


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
    identity rate.
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

    async def check(self, attempt: Attempt) -> int | None:
        waits = []
        for key, rate in self.hits(attempt):  # every key counts the attempt
            decision = await self.limiter.hit(key, rate, now=attempt.now)
            if not decision.allowed:
                waits.append(decision.retry_after)
        return max(waits, default=None)


@dataclass(frozen=True, slots=True)
class AuditLogProtection:
    """Block an identity after ``max_failures`` failures of the strategy within ``window``.

    Counted from the audit table, so it holds across processes with no other
    store; the failure being answered is recorded before the answer is sent.
    """

    audit: AuditStore
    max_failures: int = 5
    window: timedelta = timedelta(minutes=5)
    protected: frozenset[str] = frozenset({"request", "sign_in"})

    @property
    def actions(self) -> frozenset[str]:
        return self.protected

    async def check(self, attempt: Attempt) -> int | None:
        if attempt.action not in self.protected:
            return None
        nth = await self.audit.nth_latest_failure(
            identity=attempt.identity,
            strategy=attempt.strategy,
            since=attempt.now - self.window,
            n=self.max_failures,
            actions=self.protected,
        )
        if nth is None:
            return None
        # The block lifts when this failure leaves the window.
        return max(1, math.ceil((nth + self.window - attempt.now).total_seconds()))


HookResult = bool | Awaitable[bool]


@dataclass(frozen=True, slots=True)
class HookProtection:
    """A custom decision: ``hook(attempt)`` returns (or awaits to) True to allow."""

    hook: Callable[[Attempt], HookResult]
    protected: frozenset[str] = frozenset({"request", "sign_in"})
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


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(text: str) -> Rate:
    """``"5/15m"`` → 5 per 15 minutes. Units: s, m, h, d.

    Raises:
        ValueError: not of the form ``<limit>/<number><unit>``.
    """
    limit, _, window = text.strip().partition("/")
    unit = window[-1:] if window else ""
    if not limit.isdigit() or unit not in _UNITS or not window[:-1].isdigit():
        raise ValueError(f"{text!r} is not a rate such as 5/15m (units s, m, h, d)")
    return Rate(limit=int(limit), window=timedelta(seconds=int(window[:-1]) * _UNITS[unit]))


@dataclass(frozen=True, slots=True)
class DeferredHits:
    """Rate-limit hits an attempt still owes, to be made inside the caller's write transaction.

    See :meth:`BruteForceGuard.check`. :meth:`admit` runs first in that
    transaction, before anything is verified.
    """

    hits: tuple[tuple[DatabaseRateLimiter, str, Rate], ...]
    now: datetime

    def admit(self, conn: Executor) -> int | None:
        """Make every hit; ``None`` to go on, or seconds until a retry may succeed."""
        waits = [
            decision.retry_after
            for limiter, key, rate in self.hits
            if not (decision := limiter.hit_in(conn, key, rate, self.now)).allowed
        ]
        return max(waits, default=None)


class BruteForceGuard:
    """The protections of one strategy, run together before each attempt."""

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

    async def check(
        self, attempt: Attempt, *, defer_to: Database | None = None
    ) -> DeferredHits | None:
        """Count the attempt with every protection wired to its action.

        All of them run (so each counts the attempt), then the longest wait
        wins. With ``defer_to``, rate limits kept by a
        :class:`DatabaseRateLimiter` on that database are not hit here but
        returned, for the caller to make with :meth:`DeferredHits.admit` as
        the first step of its own write transaction there: the attempt is
        counted and verified under one write-lock turn instead of two. If
        another protection already refuses, they are not made: the attempt
        is refused without being verified either way.

        Raises:
            TooManyAttemptsError: any protection run here denies.
            UnavailableError: a protection's store is unreachable.
        """
        deferred: list[tuple[DatabaseRateLimiter, str, Rate]] = []
        waits: list[int] = []
        for protection in self.protections:
            if attempt.action not in protection.actions:
                continue
            if isinstance(protection, RateLimitProtection):
                limiter = protection.limiter
                if isinstance(limiter, DatabaseRateLimiter) and limiter.db is defer_to:
                    deferred.extend((limiter, key, rate) for key, rate in protection.hits(attempt))
                    continue
            wait = await protection.check(attempt)
            if wait is not None:
                waits.append(wait)
        if waits:
            raise TooManyAttemptsError(retry_after=max(waits))
        return DeferredHits(tuple(deferred), attempt.now) if deferred else None
