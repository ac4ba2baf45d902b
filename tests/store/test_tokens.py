"""Token repository contract: lookup, revocation and purge, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest
from sqlalchemy import text

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


async def test_purge_removes_only_expired_rows(db: Database) -> None:
    """Expired rows go; live ones stay."""
    tokens = TokenStore(db)
    await tokens.add(jti="gone", purpose="otp", subject="s", now=NOW, expires_at=NOW)
    await tokens.add(jti="kept", purpose="otp", subject="s", now=NOW, expires_at=LATER)
    assert await tokens.purge_expired(now=NOW) == 1
    assert await tokens.revoke("kept", now=NOW) is True
    assert await tokens.revoke("gone", now=NOW) is False


async def test_concurrent_replaces_leave_one_live_token(db: Database) -> None:
    """Twenty parallel replaces for one subject: exactly one live token remains.

    On PostgreSQL each replace's revoke saw only committed rows, so several
    survived until the subject's writes were made to take turns.
    """
    tokens = TokenStore(db)

    async def replace(index: int) -> None:
        await tokens.replace(
            jti=f"code-{index}", purpose="otp", subject="s", now=NOW, expires_at=LATER
        )

    async with anyio.create_task_group() as group:
        for index in range(20):
            group.start_soon(replace, index)
    with db.read() as conn:
        live = conn.execute(
            text("SELECT count(*) FROM keystile_tokens WHERE revoked_at IS NULL")
        ).scalar_one()
    assert live == 1
