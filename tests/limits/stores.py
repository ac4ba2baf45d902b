"""Where a test's limiters keep their counts, and how to open one; importable by subprocesses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from keystile.limits import DatabaseRateLimiter, MemoryRateLimiter, RateLimiter, RedisRateLimiter
from keystile.store.database import Database


@dataclass(frozen=True)
class LimiterStore:
    """One backend's store for one test: ``memory``, ``sqlite``, ``postgresql`` or ``redis``.

    Every :meth:`open` is a new client of the same store -- its own engine
    and pool, or its own Redis connections -- as a second process would
    hold. Memory has one store per process, so it hands out one limiter.
    """

    backend: str
    url: str = ""
    prefix: str = ""
    memory: MemoryRateLimiter = field(default_factory=MemoryRateLimiter)

    @asynccontextmanager
    async def open(self) -> AsyncIterator[RateLimiter]:
        """A limiter on this store, closed (with any engine it owns) on exit."""
        db: Database | None = None
        limiter: RateLimiter
        if self.backend == "memory":
            limiter = self.memory
        elif self.backend == "redis":
            limiter = RedisRateLimiter(self.url, prefix=self.prefix)
        else:
            db = Database(self.url, pool_size=20)
            limiter = DatabaseRateLimiter(db)
        try:
            yield limiter
        finally:
            await limiter.aclose()
            if db is not None:
                db.dispose()
