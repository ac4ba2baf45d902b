"""Token repository contract: revocation and single-use consumption, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from keystile.store.database import Database
from keystile.store.tokens import TokenStore
from keystile.store.users import UserStore

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)


async def test_active_user_needs_a_live_token_of_that_user(db: Database) -> None:
    """Found while live; not after revocation, expiry, or for another user's id."""
    user = await UserStore(db).create("a@example.com", password_hash=None, now=NOW)
    other = await UserStore(db).create("b@example.com", password_hash=None, now=NOW)
    tokens = TokenStore(db)
    await tokens.add(jti="j1", purpose="access", subject=user.subject, now=NOW, expires_at=LATER)
    assert await tokens.active_user(jti="j1", user_id=user.id, now=NOW) == user
    assert await tokens.active_user(jti="j1", user_id=other.id, now=NOW) is None
    assert await tokens.active_user(jti="j1", user_id=user.id, now=LATER) is None
    assert await tokens.active_user(jti="missing", user_id=user.id, now=NOW) is None
    assert await tokens.revoke("j1", now=NOW) is True
    assert await tokens.revoke("j1", now=NOW) is False
    assert await tokens.active_user(jti="j1", user_id=user.id, now=NOW) is None


async def test_consume_succeeds_once(db: Database) -> None:
    """A code's token row is used up by the first consume; the second finds nothing."""
    tokens = TokenStore(db)
    await tokens.add(jti="code", purpose="otp", subject="s", now=NOW, expires_at=LATER)
    assert await tokens.consume(["other", "code"], purpose="otp", subject="s", now=NOW) is True
    assert await tokens.consume(["code"], purpose="otp", subject="s", now=NOW) is False


async def test_consume_checks_purpose_subject_and_expiry(db: Database) -> None:
    """Wrong purpose, wrong subject or an expired row never consume."""
    tokens = TokenStore(db)
    await tokens.add(jti="code", purpose="otp", subject="s", now=NOW, expires_at=LATER)
    assert await tokens.consume(["code"], purpose="access", subject="s", now=NOW) is False
    assert await tokens.consume(["code"], purpose="otp", subject="t", now=NOW) is False
    assert await tokens.consume(["code"], purpose="otp", subject="s", now=LATER) is False
    assert await tokens.consume(["code"], purpose="otp", subject="s", now=NOW) is True


async def test_twenty_parallel_consumes_give_exactly_one_success(db: Database) -> None:
    """The single-use guarantee holds under concurrency (one atomic UPDATE)."""
    tokens = TokenStore(db)
    await tokens.add(jti="code", purpose="otp", subject="s", now=NOW, expires_at=LATER)
    results: list[bool] = []

    async def attempt() -> None:
        results.append(await tokens.consume(["code"], purpose="otp", subject="s", now=NOW))

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(attempt)
    assert results.count(True) == 1
    assert len(results) == 20


async def test_replace_revokes_earlier_tokens_of_the_purpose(db: Database) -> None:
    """Requesting a new code invalidates the outstanding one, not other purposes."""
    tokens = TokenStore(db)
    await tokens.add(jti="old", purpose="otp", subject="s", now=NOW, expires_at=LATER)
    await tokens.add(jti="session", purpose="access", subject="s", now=NOW, expires_at=LATER)
    await tokens.replace(jti="new", purpose="otp", subject="s", now=NOW, expires_at=LATER)
    assert await tokens.consume(["old"], purpose="otp", subject="s", now=NOW) is False
    assert await tokens.consume(["new"], purpose="otp", subject="s", now=NOW) is True
    assert await tokens.revoke("session", now=NOW) is True


async def test_purge_removes_only_expired_rows(db: Database) -> None:
    """Expired rows go; live ones stay."""
    tokens = TokenStore(db)
    await tokens.add(jti="gone", purpose="otp", subject="s", now=NOW, expires_at=NOW)
    await tokens.add(jti="kept", purpose="otp", subject="s", now=NOW, expires_at=LATER)
    assert await tokens.purge_expired(now=NOW) == 1
    assert await tokens.consume(["kept"], purpose="otp", subject="s", now=NOW) is True
