"""Atomicity across real processes: two Python processes hammer one key on one shared store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from keystile.clock import ManualClock
from tests.limits.stores import LimiterStore

ROOT = Path(__file__).resolve().parents[2]

# Each child opens its limiter, warms its connection on another key, says
# "ready", and fires its 20 hits only when the test says "go" to both, so
# the two bursts overlap instead of running one after the other.
CHILD = """
import asyncio, sys
from datetime import datetime, timedelta
from keystile.limits import Rate
from tests.limits.stores import LimiterStore

async def main() -> None:
    backend, url, prefix, now = sys.argv[1:]
    moment = datetime.fromisoformat(now)
    rate = Rate(limit=5, window=timedelta(minutes=1))
    async with LimiterStore(backend, url=url, prefix=prefix).open() as limiter:
        await limiter.hit("warm-up", rate, now=moment)
        print("ready", flush=True)
        sys.stdin.readline()
        hits = (limiter.hit("alice", rate, now=moment) for _ in range(20))
        decisions = await asyncio.gather(*hits)
    print(sum(decision.allowed for decision in decisions), flush=True)

asyncio.run(main())
"""


@pytest.mark.parametrize(
    "store",
    [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
        pytest.param("redis", id="redis"),
    ],
    indirect=True,
)
def test_two_processes_share_the_limit(store: LimiterStore, clock: ManualClock) -> None:
    """Two processes, 20 concurrent hits each, limit 5: exactly 5 pass between them."""
    args = [sys.executable, "-c", CHILD, store.backend, store.url, store.prefix]
    children = [
        subprocess.Popen(
            [*args, clock.now().isoformat()],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n", child.stderr and child.stderr.read()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait()
    for child, (_, errors) in zip(children, results, strict=True):
        assert child.returncode == 0, errors
    assert sum(int(out) for out, _ in results) == 5
