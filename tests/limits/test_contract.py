"""The RateLimiter contract, checked against every backend on a real store."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

import anyio
import pytest

from keystile.clock import ManualClock
from keystile.limits import Decision, MemoryRateLimiter, Rate, RateLimiter
from tests.limits.stores import LimiterStore

RATE = Rate(limit=3, window=timedelta(minutes=1))
PARIS = timezone(timedelta(hours=1))


async def hits(limiter: RateLimiter, key: str, count: int, *, now: datetime) -> list[Decision]:
    """``count`` hits one after another at the same moment."""
    return [await limiter.hit(key, RATE, now=now) for _ in range(count)]


def allow(remaining: int) -> Decision:
    return Decision(allowed=True, retry_after=0, remaining=remaining)


def deny(retry_after: int) -> Decision:
    return Decision(allowed=False, retry_after=retry_after, remaining=0)


def test_allows_exactly_limit_then_denies(store: LimiterStore, clock: ManualClock) -> None:
    """The first ``limit`` hits pass with a falling ``remaining``; the next waits for the oldest."""

    async def scenario() -> None:
        async with store.open() as limiter:
            decisions: list[Decision] = []
            for _ in range(RATE.limit):
                decisions.append(await limiter.hit("alice", RATE, now=clock.now()))
                clock.advance(timedelta(seconds=10))
            clock.advance(timedelta(seconds=0.25))  # now 30.25 s after the first hit
            decisions.append(await limiter.hit("alice", RATE, now=clock.now()))
        # The first hit leaves the window 29.75 s from now: rounded up to 30.
        assert decisions == [allow(2), allow(1), allow(0), deny(30)]

    anyio.run(scenario)


def test_window_moves_one_hit_at_a_time(store: LimiterStore, clock: ManualClock) -> None:
    """When the oldest hit leaves the window exactly one more hit fits, not a fresh window."""

    async def scenario() -> None:
        async with store.open() as limiter:
            start = clock.now()
            for offset in (0, 10, 20):
                await limiter.hit("alice", RATE, now=start + timedelta(seconds=offset))
            just_before = start + RATE.window - timedelta(milliseconds=1)
            before = await limiter.hit("alice", RATE, now=just_before)
            at_expiry = await hits(limiter, "alice", 2, now=start + RATE.window)
        assert before == deny(1)
        assert at_expiry == [allow(0), deny(10)]

    anyio.run(scenario)


def test_denied_hits_do_not_extend_the_lockout(store: LimiterStore, clock: ManualClock) -> None:
    """Hammering a locked key is not recorded: it unlocks when its allowed hits expire."""

    async def scenario() -> None:
        async with store.open() as limiter:
            start = clock.now()
            await hits(limiter, "alice", RATE.limit, now=start)
            hammered = [
                await limiter.hit("alice", RATE, now=start + timedelta(seconds=second))
                for second in range(1, 60)
            ]
            after = await limiter.hit("alice", RATE, now=start + RATE.window)
        assert hammered == [deny(60 - second) for second in range(1, 60)]
        # Had any denied hit counted, fewer than two would remain.
        assert after == allow(2)

    anyio.run(scenario)


def test_keys_are_independent(store: LimiterStore, clock: ManualClock) -> None:
    """One key's lockout leaves another key's budget whole."""

    async def scenario() -> None:
        async with store.open() as limiter:
            locked = await hits(limiter, "alice", RATE.limit + 1, now=clock.now())
            other = await hits(limiter, "bob", 1, now=clock.now())
        assert locked[-1] == deny(60)
        assert other == [allow(2)]

    anyio.run(scenario)


def test_reset_clears_a_key(store: LimiterStore, clock: ManualClock) -> None:
    """After ``reset`` a locked key has its whole budget back; other keys keep their hits."""

    async def scenario() -> None:
        async with store.open() as limiter:
            await hits(limiter, "alice", RATE.limit + 1, now=clock.now())
            await hits(limiter, "bob", 1, now=clock.now())
            await limiter.reset("alice")
            await limiter.reset("nobody")
            alice = await limiter.hit("alice", RATE, now=clock.now())
            bob = await limiter.hit("bob", RATE, now=clock.now())
        assert alice == allow(2)
        assert bob == allow(1)

    anyio.run(scenario)


def test_concurrent_hits_allow_exactly_the_limit(store: LimiterStore, clock: ManualClock) -> None:
    """40 simultaneous hits on one key with limit 5: exactly 5 pass, each counted once."""
    rate = Rate(limit=5, window=timedelta(minutes=1))

    async def scenario() -> list[Decision]:
        async with store.open() as limiter:
            return await asyncio.gather(
                *(limiter.hit("alice", rate, now=clock.now()) for _ in range(40))
            )

    decisions = anyio.run(scenario)
    assert sorted(d.remaining for d in decisions if d.allowed) == [0, 1, 2, 3, 4]
    assert [d for d in decisions if not d.allowed] == [deny(60)] * 35


@pytest.mark.parametrize(
    "store",
    [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
        pytest.param("redis", id="redis"),
    ],
    indirect=True,
)
def test_clients_of_one_store_share_the_limit(store: LimiterStore, clock: ManualClock) -> None:
    """Two limiters on one store (as two processes hold) allow ``limit`` hits between them."""
    rate = Rate(limit=5, window=timedelta(minutes=1))

    async def scenario() -> list[Decision]:
        async with store.open() as first, store.open() as second:
            return await asyncio.gather(
                *(limiter.hit("alice", rate, now=clock.now()) for limiter in [first, second] * 20)
            )

    decisions = anyio.run(scenario)
    assert sorted(d.remaining for d in decisions if d.allowed) == [0, 1, 2, 3, 4]


def test_agrees_with_the_memory_reference(store: LimiterStore, clock: ManualClock) -> None:
    """A long random run of hits, resets and clock moves gets the memory limiter's answers."""
    steps = random.Random(20260101)
    script = [
        (steps.choice(["alice", "bob"]), steps.random() < 0.05, steps.randrange(0, 25_000))
        for _ in range(150)
    ]

    async def run(limiter: RateLimiter) -> list[Decision | None]:
        now, answers = clock.now(), list[Decision | None]()
        for key, reset, advance_ms in script:
            now += timedelta(milliseconds=advance_ms)
            if reset:
                await limiter.reset(key)
                answers.append(None)
            else:
                answers.append(await limiter.hit(key, RATE, now=now))
        return answers

    async def scenario() -> tuple[list[Decision | None], list[Decision | None]]:
        async with store.open() as limiter:
            return await run(limiter), await run(MemoryRateLimiter())

    got, expected = anyio.run(scenario)
    assert sum(1 for answer in expected if answer is not None and not answer.allowed) > 20
    assert got == expected


def test_key_length_is_the_same_everywhere(store: LimiterStore, clock: ManualClock) -> None:
    """A 400-character key works on every backend; 401 characters or none is a ValueError."""

    async def scenario() -> None:
        async with store.open() as limiter:
            assert await limiter.hit("k" * 400, RATE, now=clock.now()) == allow(2)
            with pytest.raises(ValueError, match="key must have 1 to 400 characters"):
                await limiter.hit("k" * 401, RATE, now=clock.now())
            with pytest.raises(ValueError, match="key must have 1 to 400 characters"):
                await limiter.hit("", RATE, now=clock.now())

    anyio.run(scenario)


def test_naive_now_is_refused(store: LimiterStore) -> None:
    """A naive ``now`` is a ValueError, not a silent shift by the local UTC offset."""
    naive = datetime(2026, 1, 1, 12, 0)

    async def scenario() -> None:
        async with store.open() as limiter:
            with pytest.raises(ValueError, match="need an aware datetime"):
                await limiter.hit("alice", RATE, now=naive)

    anyio.run(scenario)


def test_other_time_zones_mean_the_same_instant(store: LimiterStore, clock: ManualClock) -> None:
    """An aware ``now`` in another zone is the same instant as its UTC equivalent."""

    async def scenario() -> None:
        async with store.open() as limiter:
            await hits(limiter, "alice", RATE.limit, now=clock.now())
            later = (clock.now() + timedelta(seconds=45)).astimezone(PARIS)
            assert await limiter.hit("alice", RATE, now=later) == deny(15)

    anyio.run(scenario)
