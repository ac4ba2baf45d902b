"""The in-process limiter: for one process, and the reference the shared backends must match.

Its counts live in this process only. Behind a load balancer every process
would allow ``limit`` hits of its own, so several processes need the
database or Redis limiter instead.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from keystile.limits.rate import CountsOnItsOwn, Decision, Rate, allowed, check_hit, denied

#: Below this many keys the limiter never sweeps: the scan would cost more than it frees.
_MIN_SWEEP = 1024


@dataclass(slots=True)
class _Log:
    # When the newest hit leaves its window; past it the whole log is dead.
    expires_at: datetime
    hits: deque[datetime] = field(default_factory=deque)


class MemoryRateLimiter(CountsOnItsOwn):
    """Moving-window counts in a dict, guarded by one lock.

    The lock is a :class:`threading.Lock`, not an asyncio one, because the
    limiter may be called from worker threads as well as coroutines; the
    check and the record happen under it with no ``await`` in between, which
    is what makes a hit atomic.

    Memory stays bounded by the live keys: a key's log is trimmed on every
    hit, and a key nobody hits again is dropped by a sweep once its newest
    hit has left the window. A sweep runs when the number of keys has
    doubled since the last one, so its cost per hit is constant on average.
    """

    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}
        self._lock = threading.Lock()
        self._sweep_at = _MIN_SWEEP

    async def hit(self, key: str, rate: Rate, *, now: datetime) -> Decision:
        """See :meth:`keystile.limits.RateLimiter.hit`."""
        check_hit(key, now)
        start = now - rate.window
        with self._lock:
            log = self._logs.get(key)
            if log is None:
                log = self._logs[key] = _Log(expires_at=now)
            while log.hits and log.hits[0] <= start:
                log.hits.popleft()
            if len(log.hits) >= rate.limit:
                return denied(rate, oldest=log.hits[0], now=now)
            # Callers read their clocks before taking the lock, so ``now`` can
            # arrive slightly out of order: insert in place to keep the log sorted.
            bisect.insort(log.hits, now)
            log.expires_at = max(log.expires_at, now + rate.window)
            if len(self._logs) >= self._sweep_at:
                self._sweep(now)
            return allowed(rate, counted=len(log.hits))

    async def reset(self, key: str) -> None:
        """See :meth:`keystile.limits.RateLimiter.reset`."""
        with self._lock:
            self._logs.pop(key, None)

    async def aclose(self) -> None:
        """Nothing to release: the counts go with the object."""

    def key_count(self) -> int:
        """How many keys are held, live or awaiting a sweep (for tests and metrics)."""
        with self._lock:
            return len(self._logs)

    def _sweep(self, now: datetime) -> None:
        dead = [key for key, log in self._logs.items() if log.expires_at <= now]
        for key in dead:
            del self._logs[key]
        self._sweep_at = max(_MIN_SWEEP, 2 * len(self._logs))
