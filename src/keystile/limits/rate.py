"""The rate-limit contract: a decision, and the interface every backend honours.

Pure: no I/O and no clock reads. The moving-window arithmetic that the
backends share lives here so that memory, SQL and Redis answer alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from keystile.rates import Rate as Rate  # the value type lives in core: configs validate rates
from keystile.rates import parse_rate as parse_rate

if TYPE_CHECKING:
    from keystile.store.database import Database
    from keystile.store.prepared import Executor

#: Longest key a limiter accepts: the width of ``keystile_rate_limit_hits.key``.
#: Checked by every backend so a key works on all of them or on none.
MAX_KEY_LENGTH = 400

_SECOND_IN_MICROSECONDS = 1_000_000


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one hit.

    ``retry_after`` is the whole number of seconds (rounded up, at least 1)
    until a hit would be allowed again, and 0 when this hit was allowed.
    ``remaining`` is how many more hits the window allows after this one.
    """

    allowed: bool
    retry_after: int
    remaining: int


class RateLimiter(Protocol):
    """Counts hits per key in a moving (sliding-log) window.

    Every backend honours the same contract, checked by one test suite:

    * ``hit`` drops the key's hits at or before ``now - rate.window``; if
      fewer than ``rate.limit`` remain it records a hit at ``now`` and allows,
      otherwise it denies *without* recording, so hammering a locked key does
      not extend its lockout.
    * It is atomic: concurrent callers (coroutines, threads and, for the
      shared backends, processes) never get more than ``rate.limit`` allowed
      hits in one window between them.
    * ``now`` is an aware UTC datetime from the caller's clock; limiters never
      read the clock, so tests move time by hand.
    * It fails closed: when the backing store cannot be reached it raises
      :class:`keystile.errors.UnavailableError` and never allows.
    * Keys are non-empty and at most :data:`MAX_KEY_LENGTH` characters
      (``ValueError`` otherwise); a naive ``now`` is a ``ValueError`` too.

    A backend that keeps its counts in a database may also declare that it
    can count a hit *inside* a write transaction of that database
    (:meth:`counts_in`), so an attempt is counted and verified under one
    write-lock turn; :meth:`hit_in` then honours the same contract as
    :meth:`hit`, and the hit is kept only if the caller's transaction commits.
    Backends without the capability (memory, Redis) answer ``False`` and are
    counted on their own, before the attempt's transaction.
    """

    async def hit(self, key: str, rate: Rate, *, now: datetime) -> Decision:
        """Count one attempt against ``key`` and say whether it may proceed."""
        ...

    async def reset(self, key: str) -> None:
        """Forget every hit of ``key`` (for example after a successful sign-in)."""
        ...

    def counts_in(self, db: Database) -> bool:
        """Whether :meth:`hit_in` and :meth:`peek_in` may run inside ``db``'s transactions."""
        ...

    def hit_in(self, conn: Executor, key: str, rate: Rate, now: datetime) -> Decision:
        """:meth:`hit` inside the caller's write transaction (only where :meth:`counts_in`).

        Raises:
            NotImplementedError: the backend cannot count inside a transaction.
        """
        ...

    def peek_in(self, conn: Executor, key: str, rate: Rate, now: datetime) -> Decision:
        """What :meth:`hit` would answer, recording nothing (only where :meth:`counts_in`).

        For a costly verification (a password hash): a caller that is locked
        out already is refused before the work, and counted for real later.

        Raises:
            NotImplementedError: the backend cannot count inside a transaction.
        """
        ...

    async def aclose(self) -> None:
        """Release connections the limiter owns."""
        ...


def check_hit(key: str, now: datetime) -> None:
    """Refuse what no backend can store alike.

    Raises:
        ValueError: the key is empty or longer than :data:`MAX_KEY_LENGTH`,
            or ``now`` is naive.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"rate-limit key must have 1 to {MAX_KEY_LENGTH} characters")
    if now.utcoffset() is None:
        raise ValueError("rate limiters need an aware datetime for now")


def allowed(rate: Rate, *, counted: int) -> Decision:
    """An allowed hit; ``counted`` is the number of hits in the window including it."""
    return Decision(allowed=True, retry_after=0, remaining=rate.limit - counted)


def denied(rate: Rate, *, oldest: datetime, now: datetime) -> Decision:
    """A denied hit: it may retry once ``oldest`` leaves the window.

    Computed in whole microseconds, exactly: no float can turn a wait of
    exactly N seconds into N + 1.
    """
    wait = (oldest + rate.window - now) // timedelta(microseconds=1)
    seconds = -(-wait // _SECOND_IN_MICROSECONDS)
    return Decision(allowed=False, retry_after=max(1, seconds), remaining=0)


class CountsOnItsOwn:
    """The :class:`RateLimiter` members of a backend that cannot count inside a transaction."""

    def counts_in(self, db: Database) -> bool:
        """Never: this backend's counts live outside any database."""
        return False

    def hit_in(self, conn: Executor, key: str, rate: Rate, now: datetime) -> Decision:
        """Not offered: see :meth:`RateLimiter.hit_in`."""
        raise NotImplementedError(f"{type(self).__name__} cannot count inside a transaction")

    def peek_in(self, conn: Executor, key: str, rate: Rate, now: datetime) -> Decision:
        """Not offered: see :meth:`RateLimiter.peek_in`."""
        raise NotImplementedError(f"{type(self).__name__} cannot count inside a transaction")
