"""What only the Redis limiter promises: failing closed, and quickly."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import anyio
import pytest
from redis.asyncio import Redis

from keystile.clock import ManualClock
from keystile.errors import UnavailableError
from keystile.limits import Decision, Rate, RedisRateLimiter
from tests.servers import free_port

RATE = Rate(limit=3, window=timedelta(minutes=1))


def test_unreachable_redis_fails_closed(clock: ManualClock) -> None:
    """A Redis that refuses connections is UnavailableError for hit and reset, within a second."""

    async def scenario() -> None:
        limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0")
        try:
            with pytest.raises(UnavailableError) as raised:
                await limiter.hit("alice", RATE, now=clock.now())
            assert raised.value.code == "unavailable"
            with pytest.raises(UnavailableError):
                await limiter.reset("alice")
        finally:
            await limiter.aclose()

    started = time.monotonic()
    anyio.run(scenario)
    assert time.monotonic() - started < 1.0


def test_dropped_connections_are_replaced(redis_url: str, clock: ManualClock) -> None:
    """After the server drops every client connection, the next hit reconnects and counts."""

    async def scenario() -> list[Decision]:
        limiter = RedisRateLimiter(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
        admin = Redis.from_url(redis_url)
        try:
            first = await limiter.hit("alice", RATE, now=clock.now())
            killed = await admin.client_kill_filter(_type="normal", skipme=True)
            assert killed >= 1
            return [first, await limiter.hit("alice", RATE, now=clock.now())]
        finally:
            await admin.aclose()
            await limiter.aclose()

    assert anyio.run(scenario) == [
        Decision(allowed=True, retry_after=0, remaining=2),
        Decision(allowed=True, retry_after=0, remaining=1),
    ]
