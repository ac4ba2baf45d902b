"""What only the memory limiter promises: thread safety, bounded memory, the moving-window law."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from keystile.limits import Decision, MemoryRateLimiter, Rate

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_threads_share_the_limit() -> None:
    """Eight threads, each with its own event loop, firing 10 hits at once: 5 pass in total."""
    limiter = MemoryRateLimiter()
    rate = Rate(limit=5, window=timedelta(minutes=1))
    start = threading.Barrier(8)

    def worker(_: int) -> int:
        async def burst() -> list[Decision]:
            return await asyncio.gather(*(limiter.hit("alice", rate, now=NOW) for _ in range(10)))

        start.wait()
        return sum(decision.allowed for decision in anyio.run(burst))

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sum(pool.map(worker, range(8))) == 5


def test_keys_nobody_hits_again_are_swept() -> None:
    """Once their hits have left the window, idle keys are dropped at the next sweep."""
    limiter = MemoryRateLimiter()
    rate = Rate(limit=5, window=timedelta(minutes=1))

    async def scenario() -> None:
        for number in range(1023):
            await limiter.hit(f"user{number}", rate, now=NOW)
        assert limiter.key_count() == 1023
        # The 1024th key triggers a sweep; every earlier key's window has passed.
        await limiter.hit("late", rate, now=NOW + timedelta(minutes=1))

    anyio.run(scenario)
    assert limiter.key_count() == 1


def test_live_keys_survive_a_sweep() -> None:
    """A sweep keeps every key whose hits still count."""
    limiter = MemoryRateLimiter()
    rate = Rate(limit=1, window=timedelta(minutes=1))

    async def scenario() -> Decision:
        for number in range(1024):
            await limiter.hit(f"user{number}", rate, now=NOW)
        return await limiter.hit("user0", rate, now=NOW + timedelta(seconds=59))

    assert anyio.run(scenario) == Decision(allowed=False, retry_after=1, remaining=0)
    assert limiter.key_count() == 1024


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=4),
    window_seconds=st.integers(min_value=1, max_value=30),
    steps=st.lists(
        st.tuples(st.sampled_from(["alice", "bob"]), st.integers(min_value=0, max_value=20_000)),
        max_size=60,
    ),
)
def test_the_moving_window_law(
    limit: int, window_seconds: int, steps: list[tuple[str, int]]
) -> None:
    """A hit passes exactly when fewer than ``limit`` passed hits of its key are in the window.

    The window is ``(now - window, now]``; a denial waits, rounded up to whole
    seconds, until the oldest hit in it leaves.
    """
    rate = Rate(limit=limit, window=timedelta(seconds=window_seconds))
    limiter = MemoryRateLimiter()
    passed: dict[str, list[datetime]] = {"alice": [], "bob": []}
    now = NOW

    async def check() -> None:
        nonlocal now
        for key, advance_ms in steps:
            now += timedelta(milliseconds=advance_ms)
            live = [moment for moment in passed[key] if moment > now - rate.window]
            decision = await limiter.hit(key, rate, now=now)
            if len(live) < limit:
                assert decision == Decision(
                    allowed=True, retry_after=0, remaining=limit - len(live) - 1
                )
                passed[key].append(now)
            else:
                wait = live[0] + rate.window - now
                expected = -(-wait // timedelta(microseconds=1) // 1_000_000)
                assert decision == Decision(
                    allowed=False, retry_after=max(1, expected), remaining=0
                )

    anyio.run(check)
