"""The rate-limit contract: a rate, a decision, and the interface every backend honours.

Pure: no I/O and no clock reads. The moving-window arithmetic that the
backends share lives here so that memory, SQL and Redis answer alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

#: Longest key a limiter accepts: the width of ``keystile_rate_limit_hits.key``.
#: Checked by every backend so a key works on all of them or on none.
MAX_KEY_LENGTH = 400

_SECOND_IN_MICROSECONDS = 1_000_000


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``limit`` hits in any moving ``window``.

    Raises:
        ValueError: ``limit`` is below 1 or ``window`` is not positive.
    """

    limit: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"rate limit must be at least 1, got {self.limit}")
        if self.window <= timedelta(0):
            raise ValueError(f"rate window must be positive, got {self.window}")


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
    """

    async def hit(self, key: str, rate: Rate, *, now: datetime) -> Decision:
        """Count one attempt against ``key`` and say whether it may proceed."""
        ...

    async def reset(self, key: str) -> None:
        """Forget every hit of ``key`` (for example after a successful sign-in)."""
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
