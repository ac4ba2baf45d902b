"""Sessions: a token check remembered for a moment never outlives revocation's bound.

Two :class:`Runtime` instances on one database stand for two server processes:
each has its own memory of live tokens, and they share the test's clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import text

from keystile import testing
from keystile.clock import ManualClock
from keystile.errors import UnauthenticatedError
from keystile.flows.session_cache import MAX_TTL
from keystile.flows.sessions import Authenticated, Sessions
from keystile.runtime import Runtime
from keystile.settings import Settings

pytestmark = pytest.mark.anyio
EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
async def processes(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> AsyncIterator[tuple[Runtime, Runtime]]:
    """Two runtimes ("processes") on the same database and clock."""
    settings = make_settings()
    first, second = Runtime(settings, clock=clock), Runtime(settings, clock=clock)
    yield first, second
    await first.aclose()
    await second.aclose()


async def signed_in(runtime: Runtime) -> Authenticated:
    user = await runtime.create_user(EMAIL)
    return await runtime.sessions.start(user, strategies=["otp"], amr=["otp"])


async def refused(sessions: Sessions, token: str) -> bool:
    try:
        await sessions.verify(token)
    except UnauthenticatedError:
        return True
    return False


async def test_the_revoking_process_refuses_at_once(
    processes: tuple[Runtime, Runtime], clock: ManualClock
) -> None:
    """Sign-out drops the remembered token: the next check, at the same instant, is refused."""
    here, _ = processes
    issued = await signed_in(here)
    session = await here.sessions.verify(issued.token)
    assert (await here.sessions.verify(issued.token)).claims.jti == issued.claims.jti
    await here.sessions.end(session)
    assert await refused(here.sessions, issued.token)


async def test_another_process_refuses_a_revoked_token_within_the_bound(
    processes: tuple[Runtime, Runtime], clock: ManualClock
) -> None:
    """A process that found the token live a moment ago may answer from memory until
    1 s after that check (the documented bound), and refuses it from then on."""
    here, there = processes
    issued = await signed_in(here)
    await there.sessions.verify(issued.token)  # remembered there
    await here.sessions.end(await here.sessions.verify(issued.token))
    clock.advance(MAX_TTL - timedelta(microseconds=1))
    assert not await refused(there.sessions, issued.token)  # still within the bound
    clock.advance(timedelta(microseconds=1))
    assert await refused(there.sessions, issued.token)
    assert await refused(here.sessions, issued.token)


async def test_a_deleted_user_is_refused_within_the_bound(
    processes: tuple[Runtime, Runtime], clock: ManualClock
) -> None:
    """The user row comes from the same check: once the user is gone from the database,
    their live token is refused within 1 s by every process."""
    here, there = processes
    issued = await signed_in(here)
    await here.sessions.verify(issued.token)
    await there.sessions.verify(issued.token)
    with testing.database(here).write() as conn:
        conn.execute(text("DELETE FROM keystile_users"))
    clock.advance(MAX_TTL)
    assert await refused(here.sessions, issued.token)
    assert await refused(there.sessions, issued.token)


async def test_with_a_zero_ttl_every_check_asks_the_database(
    processes: tuple[Runtime, Runtime],
    clock: ManualClock,
    make_settings: Callable[..., Settings],
) -> None:
    """``KEYSTILE_SESSION_CACHE_SECONDS=0``: another process's revocation is seen by the very
    next check."""
    here, _ = processes
    issued = await signed_in(here)
    there = Runtime(make_settings(session_cache_seconds=0), clock=clock)
    try:
        uncached = there.sessions
        await uncached.verify(issued.token)
        await here.sessions.end(await here.sessions.verify(issued.token))
        assert await refused(uncached, issued.token)
    finally:
        await there.aclose()
