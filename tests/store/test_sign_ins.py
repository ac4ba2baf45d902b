"""The one-transaction sign-in writes, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import text

from keystile.store.audit import AuditEvent
from keystile.store.database import Database
from keystile.store.sign_ins import SessionRow, SignInStore
from keystile.store.users import User, UserStore

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)
EMAIL = "alice@example.com"
AUDIT = AuditEvent(occurred_at=NOW, strategy="otp", action="sign_in", success=False, identity=EMAIL)


def session(jti: str = "session-1") -> SessionRow:
    return SessionRow(jti=jti, purpose="access", expires_at=NOW + timedelta(hours=1))


async def store_code(store: SignInStore, code_id: str, *, email: str = EMAIL) -> str | None:
    subject, _ = await store.store_code(
        identity=email,
        code_id=code_id,
        purpose="otp",
        now=NOW,
        expires_at=LATER,
        audit=AuditEvent(occurred_at=NOW, strategy="otp", action="request", success=False),
        deliver_to_unknown=False,
    )
    return subject


async def redeem(
    store: SignInStore,
    code_ids: list[str],
    *,
    now: datetime = NOW,
    register: bool = False,
    jti: str = "session-1",
    single_use: bool = True,
) -> User | None:
    return await store.redeem_code(
        identity=EMAIL,
        code_ids=code_ids,
        purpose="otp",
        now=now,
        max_failures=5,
        single_use=single_use,
        register=register,
        session=session(jti),
        audit=AUDIT,
    )


def rows(db: Database, sql: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(text(sql))]


async def test_store_code_reports_the_subject_and_whether_to_deliver(db: Database) -> None:
    """Known identity: its subject and deliver; unknown: neither, still stored and audited."""
    store = SignInStore(db)
    user = await UserStore(db).create(EMAIL, password_hash=None, now=NOW)
    assert await store_code(store, "c1") == user.subject
    assert await store_code(store, "c2", email="nobody@example.com") is None
    audit = rows(db, "SELECT success, subject FROM keystile_audit_events ORDER BY id")
    assert [(bool(r["success"]), r["subject"]) for r in audit] == [
        (True, user.subject),
        (False, None),
    ]
    assert len(rows(db, "SELECT jti FROM keystile_tokens WHERE purpose = 'otp'")) == 2


async def test_a_new_code_revokes_the_outstanding_one(db: Database) -> None:
    """Only the newest code of an identity is live."""
    store = SignInStore(db)
    await UserStore(db).create(EMAIL, password_hash=None, now=NOW)
    await store_code(store, "old")
    await store_code(store, "new")
    assert await redeem(store, ["old"]) is None
    assert await redeem(store, ["new"], jti="session-2") is not None


async def test_redeem_once_writes_session_and_audit_together(db: Database) -> None:
    """A hit returns the user, stores the session row and a success record; a replay fails."""
    store = SignInStore(db)
    user = await UserStore(db).create(EMAIL, password_hash=None, now=NOW)
    await store_code(store, "code")
    assert await redeem(store, ["other-key-id", "code"]) == user
    assert await redeem(store, ["code"], jti="session-2") is None
    sessions = rows(db, "SELECT jti, subject FROM keystile_tokens WHERE purpose = 'access'")
    assert sessions == [{"jti": "session-1", "subject": user.subject}]
    audit = rows(db, "SELECT success FROM keystile_audit_events WHERE action = 'sign_in'")
    assert [bool(r["success"]) for r in audit] == [True, False]


async def test_misses_burn_the_code_at_the_limit(db: Database) -> None:
    """Four misses leave the code usable; the fifth burns it."""
    store = SignInStore(db)
    await UserStore(db).create(EMAIL, password_hash=None, now=NOW)
    await store_code(store, "code")
    for _ in range(4):
        assert await redeem(store, ["wrong"]) is None
    assert rows(db, "SELECT failed_attempts FROM keystile_tokens")[0]["failed_attempts"] == 4
    assert await redeem(store, ["wrong"]) is None
    assert await redeem(store, ["code"]) is None
    [row] = rows(db, "SELECT failed_attempts, revoked_at FROM keystile_tokens")
    assert row["failed_attempts"] == 5
    assert row["revoked_at"] is not None


async def test_expired_codes_never_redeem(db: Database) -> None:
    """At the expiry instant the code is dead."""
    store = SignInStore(db)
    await UserStore(db).create(EMAIL, password_hash=None, now=NOW)
    await store_code(store, "code")
    assert await redeem(store, ["code"], now=LATER) is None


async def test_parallel_redeems_of_one_code_give_one_user(db: Database) -> None:
    """Twenty concurrent redeems: one user, one session row."""
    store = SignInStore(db)
    await UserStore(db).create(EMAIL, password_hash=None, now=NOW)
    await store_code(store, "code")
    results: list[User | None] = []

    async def attempt(index: int) -> None:
        results.append(await redeem(store, ["code"], jti=f"session-{index}"))

    async with anyio.create_task_group() as group:
        for index in range(20):
            group.start_soon(attempt, index)
    assert sum(result is not None for result in results) == 1
    assert len(rows(db, "SELECT jti FROM keystile_tokens WHERE purpose = 'access'")) == 1


async def test_registration_creates_the_user_only_on_a_correct_code(db: Database) -> None:
    """register=True: a miss creates nothing; the hit creates the user with no password."""
    store = SignInStore(db)
    await store_code(store, "code")
    assert await redeem(store, ["wrong"], register=True) is None
    assert await UserStore(db).get_by_email(EMAIL) is None
    created = await redeem(store, ["code"], register=True)
    assert created is not None
    assert created.password_hash is None
    assert await UserStore(db).get_by_email(EMAIL) == created


async def test_codes_may_be_reusable_when_single_use_is_off(db: Database) -> None:
    """single_use=False: the code works until it expires."""
    store = SignInStore(db)
    await UserStore(db).create(EMAIL, password_hash=None, now=NOW)
    await store_code(store, "code")
    assert await redeem(store, ["code"], single_use=False) is not None
    assert await redeem(store, ["code"], single_use=False, jti="session-2") is not None


async def test_finish_writes_the_audit_record_and_session_row(db: Database) -> None:
    """A password sign-in's audit and session row are one transaction."""
    store = SignInStore(db)
    user = await UserStore(db).create(EMAIL, password_hash=None, now=NOW)
    await store.finish(user=user, session=session(), audit=AUDIT, now=NOW)
    await store.finish(user=None, session=session("unused"), audit=AUDIT, now=NOW)
    assert len(rows(db, "SELECT jti FROM keystile_tokens")) == 1
    assert len(rows(db, "SELECT id FROM keystile_audit_events")) == 2


async def test_the_same_code_drawn_again_for_one_identity_is_stored_and_live_once(
    db: Database,
) -> None:
    """A code drawn twice (same id) replaces its old row instead of hitting the primary key.

    With ``digits_only`` and a short length the same code for one identity is
    a matter of time; the second request used to answer 500 (issue 7, item 10).
    """
    store = SignInStore(db)
    user = await UserStore(db).create(EMAIL, password_hash=None, now=NOW)
    await store_code(store, "same")
    await store_code(store, "other")
    await store_code(store, "same")
    [row] = rows(db, "SELECT revoked_at, failed_attempts FROM keystile_tokens WHERE jti = 'same'")
    assert row == {"revoked_at": None, "failed_attempts": 0}
    assert await redeem(store, ["other"]) is None
    assert await redeem(store, ["same"], jti="session-2") == user
    assert await redeem(store, ["same"], jti="session-3") is None
