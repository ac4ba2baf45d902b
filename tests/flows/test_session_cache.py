"""The per-process memory of live tokens: its time bound, its size bound, and revocation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from keystile.clock import ManualClock
from keystile.flows.session_cache import MAX_TTL, SessionCache, token_key
from keystile.flows.sessions import Session
from keystile.store.users import User
from keystile.tokens import TokenClaims

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def session(jti: str, *, expires_at: datetime = NOW + timedelta(hours=1)) -> Session:
    user = User(id=uuid.uuid4(), email="alice@example.com", created_at=NOW, updated_at=NOW)
    claims = TokenClaims(
        subject=user.subject,
        jti=jti,
        purpose="access",
        issued_at=NOW,
        expires_at=expires_at,
        auth_time=NOW,
        amr=("pwd",),
        strategies=("password",),
    )
    return Session(user=user, claims=claims)


def remember(cache: SessionCache, clock: ManualClock, jti: str, **kwargs: datetime) -> bytes:
    key = token_key(f"token-{jti}")
    cache.put(key, session(jti, **kwargs), checked_at=clock.now(), generation=cache.generation)
    return key


def test_an_entry_serves_for_less_than_the_ttl_and_not_after() -> None:
    """Found at t, answered until t + ttl (exclusive): the documented bound, and no more."""
    clock = ManualClock(NOW)
    cache = SessionCache(clock, ttl=timedelta(seconds=1))
    key = remember(cache, clock, "a")
    found = cache.get(key)
    assert found is not None
    assert found.claims.jti == "a"
    clock.advance(timedelta(milliseconds=999))
    assert cache.get(key) is not None
    clock.advance(timedelta(milliseconds=1))
    assert cache.get(key) is None


def test_an_entry_never_outlives_its_token() -> None:
    """A token expiring within the ttl is not answered from memory past its ``exp``."""
    clock = ManualClock(NOW)
    cache = SessionCache(clock)
    key = remember(cache, clock, "a", expires_at=NOW + timedelta(milliseconds=300))
    clock.advance(timedelta(milliseconds=299))
    assert cache.get(key) is not None
    clock.advance(timedelta(milliseconds=1))
    assert cache.get(key) is None


def test_a_clock_moved_back_does_not_stretch_the_bound() -> None:
    """An entry stored 'in the future' of the clock is not used: a wall clock set back
    would otherwise keep it for longer than the ttl."""
    clock = ManualClock(NOW)
    cache = SessionCache(clock)
    key = remember(cache, clock, "a")
    clock.advance(timedelta(milliseconds=-1))
    assert cache.get(key) is None


def test_drop_forgets_at_once_and_stops_lookups_in_flight_from_storing() -> None:
    """A revocation here: the entry goes, and a lookup that began before it stores nothing."""
    clock = ManualClock(NOW)
    cache = SessionCache(clock)
    key = remember(cache, clock, "a")
    in_flight = cache.generation
    cache.drop("a")
    assert cache.get(key) is None
    cache.put(key, session("a"), checked_at=clock.now(), generation=in_flight)
    assert cache.get(key) is None
    assert len(cache) == 0
    remember(cache, clock, "a")  # a lookup that began after the drop may store
    assert cache.get(key) is not None


def test_the_cache_is_bounded_and_makes_room_by_dropping_the_oldest() -> None:
    """At most ``max_entries`` are held; a new one pushes out the one stored first."""
    clock = ManualClock(NOW)
    cache = SessionCache(clock, max_entries=3)
    keys = []
    for index in range(5):
        keys.append(remember(cache, clock, f"t{index}"))
        clock.advance(timedelta(milliseconds=10))
    assert len(cache) == 3
    assert [cache.get(key) is not None for key in keys] == [False, False, True, True, True]
    cache.drop("t0")  # an evicted entry's jti is forgotten too
    assert len(cache) == 3


def test_storing_a_key_again_replaces_its_entry() -> None:
    """A token checked again is one entry, found from its newer check."""
    clock = ManualClock(NOW)
    cache = SessionCache(clock, max_entries=2)
    key = remember(cache, clock, "a")
    clock.advance(timedelta(milliseconds=600))
    remember(cache, clock, "a")
    clock.advance(timedelta(milliseconds=600))
    assert len(cache) == 1
    assert cache.get(key) is not None


def test_a_zero_ttl_remembers_nothing() -> None:
    """``ttl=0`` turns the cache off: every check asks the database."""
    clock = ManualClock(NOW)
    cache = SessionCache(clock, ttl=timedelta(0))
    key = remember(cache, clock, "a")
    assert not cache.enabled
    assert cache.get(key) is None
    assert len(cache) == 0


@pytest.mark.parametrize(
    ("ttl", "entries"),
    [(MAX_TTL + timedelta(microseconds=1), 10), (timedelta(seconds=-1), 10), (MAX_TTL, 0)],
)
def test_a_bound_above_one_second_or_no_room_is_refused(ttl: timedelta, entries: int) -> None:
    """The revocation bound is 1 s at most; a cache must hold at least one entry."""
    with pytest.raises(ValueError, match="session cache"):
        SessionCache(ManualClock(NOW), ttl=ttl, max_entries=entries)
