"""The pure part of the limiter contract: rates, decisions and the retry arithmetic."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from keystile.limits import Decision, Rate
from keystile.limits.rate import MAX_KEY_LENGTH, allowed, check_hit, denied

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RATE = Rate(limit=5, window=timedelta(minutes=1))


@pytest.mark.parametrize("limit", [0, -1])
def test_rate_needs_a_positive_limit(limit: int) -> None:
    """A limit below 1 would lock every key out for good: refused when the rate is built."""
    with pytest.raises(ValueError, match=f"^rate limit must be at least 1, got {limit}$"):
        Rate(limit=limit, window=timedelta(minutes=1))


@pytest.mark.parametrize("window", [timedelta(0), timedelta(seconds=-1)])
def test_rate_needs_a_positive_window(window: timedelta) -> None:
    """An empty or negative window would count nothing: refused when the rate is built."""
    with pytest.raises(ValueError, match=r"^rate window must be positive, got "):
        Rate(limit=5, window=window)


def test_rate_is_immutable() -> None:
    """A rate is a value: it cannot be changed after validation."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        RATE.limit = 1000  # type: ignore[misc]


def test_allowed_reports_what_is_left() -> None:
    """An allowed hit has no wait and says how many more hits the window takes."""
    assert allowed(RATE, counted=1) == Decision(allowed=True, retry_after=0, remaining=4)
    assert allowed(RATE, counted=5) == Decision(allowed=True, retry_after=0, remaining=0)


@pytest.mark.parametrize(
    ("oldest_age", "retry_after"),
    [
        (timedelta(seconds=0), 60),
        (timedelta(seconds=30), 30),
        (timedelta(seconds=30, microseconds=1), 30),
        (timedelta(seconds=29, microseconds=999_999), 31),
        (timedelta(seconds=59, microseconds=999_999), 1),
        (timedelta(seconds=10, milliseconds=700), 50),
    ],
)
def test_denied_rounds_the_wait_up_to_whole_seconds(
    oldest_age: timedelta, retry_after: int
) -> None:
    """``retry_after`` is the wait until the oldest hit leaves, rounded up, at least 1."""
    decision = denied(RATE, oldest=NOW - oldest_age, now=NOW)
    assert decision == Decision(allowed=False, retry_after=retry_after, remaining=0)


def test_check_hit_bounds_the_key() -> None:
    """Keys of 1 to MAX_KEY_LENGTH characters pass; empty and longer keys do not."""
    check_hit("k", NOW)
    check_hit("k" * MAX_KEY_LENGTH, NOW)
    for key in ["", "k" * (MAX_KEY_LENGTH + 1)]:
        with pytest.raises(ValueError, match=r"^rate-limit key must have 1 to 400 characters$"):
            check_hit(key, NOW)


def test_check_hit_refuses_naive_time() -> None:
    """A naive ``now`` is refused rather than guessed to be UTC."""
    with pytest.raises(ValueError, match=r"^rate limiters need an aware datetime for now$"):
        check_hit("k", NOW.replace(tzinfo=None))
