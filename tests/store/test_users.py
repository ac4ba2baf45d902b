"""User repository contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from sqlalchemy.exc import StatementError

from keystile.errors import AlreadyRegisteredError
from keystile.store.database import Database
from keystile.store.users import UserStore

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def test_create_then_find_by_email_and_id(db: Database) -> None:
    """A created user is found by email and id, with aware UTC timestamps."""
    users = UserStore(db)
    created = await users.create("alice@example.com", password_hash="$argon2id$x", now=NOW)
    by_email = await users.get_by_email("alice@example.com")
    by_id = await users.get(created.id)
    assert by_email == by_id == created
    assert by_email is not None
    assert by_email.created_at == NOW
    assert by_email.created_at.tzinfo is not None
    assert await users.get_by_email("bob@example.com") is None
    assert await users.get(uuid.uuid4()) is None


async def test_email_is_unique(db: Database) -> None:
    """A second account for one email is refused by the database itself."""
    users = UserStore(db)
    await users.create("alice@example.com", password_hash=None, now=NOW)
    with pytest.raises(AlreadyRegisteredError):
        await users.create("alice@example.com", password_hash=None, now=NOW)


async def test_parallel_registrations_of_one_email_create_one_user(db: Database) -> None:
    """Ten concurrent creates for one email: exactly one wins."""
    users = UserStore(db)
    outcomes: list[bool] = []

    async def register() -> None:
        try:
            await users.create("race@example.com", password_hash=None, now=NOW)
            outcomes.append(True)
        except AlreadyRegisteredError:
            outcomes.append(False)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(register)
    assert outcomes.count(True) == 1
    assert len(await users.list()) == 1


async def test_list_is_ordered_by_creation(db: Database) -> None:
    """Oldest first, with limit and offset."""
    users = UserStore(db)
    for index in range(3):
        await users.create(f"u{index}@example.com", password_hash=None, now=NOW + timedelta(index))
    listed = await users.list()
    assert [u.email for u in listed] == ["u0@example.com", "u1@example.com", "u2@example.com"]
    assert [u.email for u in await users.list(limit=1, offset=1)] == ["u1@example.com"]


async def test_password_hash_can_be_replaced(db: Database) -> None:
    """A rehash replaces the stored hash and moves updated_at."""
    users = UserStore(db)
    user = await users.create("a@example.com", password_hash="old", now=NOW)
    await users.set_password_hash(user.id, "new", now=NOW + timedelta(minutes=1))
    stored = await users.get(user.id)
    assert stored is not None
    assert stored.password_hash == "new"
    assert stored.updated_at == NOW + timedelta(minutes=1)


async def test_naive_datetimes_are_refused(db: Database) -> None:
    """A naive datetime is a bug upstream, never silently stored."""
    users = UserStore(db)
    with pytest.raises(StatementError, match="naive"):
        await users.create("a@example.com", password_hash=None, now=datetime(2026, 1, 1))
