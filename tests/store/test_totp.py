"""The TOTP authenticator repository, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text, update

from keystile.crypto.keyring import KeyRing
from keystile.crypto.sealing import UnsealError
from keystile.store import totp as store
from keystile.store.database import Database
from keystile.store.tables import totp_authenticators, users
from keystile.strategies.totp.core import new_secret
from keystile.strategies.totp.sealing import seal_secret, unseal_secret

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
STEP = 59_179_680
RING = KeyRing(["e" * 40])


def make_user(db: Database, email: str = "alice@example.com") -> uuid.UUID:
    user_id = uuid.uuid4()
    with db.write() as conn:
        conn.execute(insert(users).values(id=user_id, email=email, created_at=NOW, updated_at=NOW))
    return user_id


def add_pending(
    db: Database,
    user_id: uuid.UUID,
    authenticator_id: str,
    *,
    secret: bytes | None = None,
    ring: KeyRing = RING,
    now: datetime = NOW,
) -> bytes:
    """Store a pending setup; the secret it sealed."""
    secret = secret if secret is not None else new_secret()
    sealed = seal_secret(ring, secret, user_id=user_id)
    with db.driver_write() as conn:
        store.insert_pending(
            conn,
            authenticator_id=authenticator_id,
            user_id=user_id,
            sealed_secret=sealed.value,
            key_id=sealed.key_id,
            algorithm="SHA1",
            digits=6,
            period=30,
            now=now,
        )
    return secret


def activate(db: Database, authenticator_id: str, user_id: uuid.UUID, step: int = STEP) -> bool:
    with db.driver_write() as conn:
        return store.activate(conn, authenticator_id, user_id, step, NOW)


def record_step(db: Database, authenticator_id: str, step: int) -> bool:
    with db.driver_write() as conn:
        return store.record_step(conn, authenticator_id, step)


def ids(db: Database) -> list[str]:
    with db.read() as conn:
        return list(
            conn.execute(select(totp_authenticators.c.id).order_by(totp_authenticators.c.id))
            .scalars()
            .all()
        )


def in_parallel(count: int, call: Callable[[int], bool]) -> list[bool]:
    """``count`` calls released together from a barrier, each on its own thread."""
    barrier = threading.Barrier(count)

    def run(index: int) -> bool:
        barrier.wait()
        return call(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_a_pending_setup_is_found_only_for_its_user_and_is_not_active(db: Database) -> None:
    """get_pending is bound to the user; a pending setup is no second factor yet."""
    alice, bob = make_user(db), make_user(db, "bob@example.com")
    secret = add_pending(db, alice, "setup-1")
    with db.driver_read() as conn:
        pending = store.get_pending(conn, "setup-1", alice)
        assert store.get_pending(conn, "setup-1", bob) is None
        assert store.get_active(conn, alice) is None
    assert pending is not None
    assert not pending.active
    assert (pending.user_id, pending.algorithm, pending.digits, pending.period) == (
        alice,
        "SHA1",
        6,
        30,
    )
    assert (pending.last_step, pending.created_at, pending.confirmed_at) == (None, NOW, None)
    assert pending.key_id == RING.current.kid
    assert unseal_secret(RING, pending.sealed_secret, user_id=alice) == secret
    assert "sealed_secret" not in repr(pending)


def test_activate_confirms_records_the_step_and_replaces_every_other(db: Database) -> None:
    """The confirmed setup becomes the one authenticator, with its step; a second try fails."""
    alice, bob = make_user(db), make_user(db, "bob@example.com")
    add_pending(db, alice, "old")
    assert activate(db, "old", alice, STEP - 100)
    add_pending(db, alice, "abandoned")
    add_pending(db, alice, "new")
    add_pending(db, bob, "bobs")
    assert activate(db, "new", alice)
    with db.driver_read() as conn:
        active = store.get_active(conn, alice)
        assert store.get_pending(conn, "new", alice) is None
    assert active is not None
    assert (active.id, active.last_step, active.confirmed_at) == ("new", STEP, NOW)
    assert ids(db) == ["bobs", "new"]
    assert not activate(db, "new", alice, STEP + 1)


def test_activate_refuses_another_users_setup_and_changes_nothing(db: Database) -> None:
    """A setup id with the wrong user confirms nothing and deletes nothing."""
    alice, bob = make_user(db), make_user(db, "bob@example.com")
    add_pending(db, alice, "alices")
    add_pending(db, bob, "bobs")
    assert activate(db, "bobs", bob)
    assert not activate(db, "alices", bob)
    assert ids(db) == ["alices", "bobs"]


def test_record_step_accepts_only_a_later_step(db: Database) -> None:
    """Same step: refused; earlier: refused; later: accepted; unknown id: refused."""
    alice = make_user(db)
    add_pending(db, alice, "a")
    assert activate(db, "a", alice)
    assert not record_step(db, "a", STEP)
    assert not record_step(db, "a", STEP - 1)
    assert record_step(db, "a", STEP + 1)
    assert not record_step(db, "a", STEP + 1)
    assert not record_step(db, "missing", STEP + 5)
    with db.driver_read() as conn:
        active = store.get_active(conn, alice)
    assert active is not None
    assert active.last_step == STEP + 1


def test_twenty_parallel_record_steps_of_one_step_give_exactly_one_success(
    db: Database,
) -> None:
    """One conditional UPDATE: of 20 concurrent verifications of one code, one wins."""
    alice = make_user(db)
    add_pending(db, alice, "a")
    assert activate(db, "a", alice)
    results = in_parallel(20, lambda _: record_step(db, "a", STEP + 1))
    assert results.count(True) == 1
    with db.driver_read() as conn:
        active = store.get_active(conn, alice)
    assert active is not None
    assert active.last_step == STEP + 1


def test_parallel_confirmations_of_two_setups_leave_exactly_one(db: Database) -> None:
    """Confirming two pending setups of one user at once: one wins, no deadlock, one row."""
    alice = make_user(db)
    add_pending(db, alice, "first")
    add_pending(db, alice, "second")
    results = in_parallel(10, lambda index: activate(db, ("first", "second")[index % 2], alice))
    assert results.count(True) == 1
    assert len(ids(db)) == 1


def test_deletes_count_what_they_remove(db: Database) -> None:
    """delete_pending keeps the active one; delete_for_user removes all; purge only old pending."""
    alice, bob = make_user(db), make_user(db, "bob@example.com")
    add_pending(db, alice, "active")
    assert activate(db, "active", alice)
    add_pending(db, alice, "p1")
    add_pending(db, alice, "p2")
    add_pending(db, bob, "bob-old", now=NOW - timedelta(hours=2))
    add_pending(db, bob, "bob-new")
    with db.driver_write() as conn:
        assert store.delete_pending(conn, alice) == 2
        assert store.purge_pending(conn, before=NOW - timedelta(hours=1)) == 1
    assert ids(db) == ["active", "bob-new"]
    with db.driver_write() as conn:
        assert store.delete_for_user(conn, alice) == 1
        assert store.delete_for_user(conn, alice) == 0
    assert ids(db) == ["bob-new"]


def test_deleting_a_user_deletes_their_authenticators(db: Database) -> None:
    """The foreign key cascades: no orphaned secrets."""
    alice = make_user(db)
    add_pending(db, alice, "a")
    with db.write() as conn:
        conn.execute(users.delete().where(users.c.id == alice))
    assert ids(db) == []


def test_rows_not_under_pages_by_id_and_reseal_is_conditional(db: Database) -> None:
    """Rows under other keys come in id order after ``after``; a stale reseal changes nothing."""
    old, new = KeyRing(["o" * 40]), KeyRing(["n" * 40, "o" * 40])
    alice = make_user(db)
    for name in ("a", "b", "c"):
        add_pending(db, alice, name, ring=old)
    add_pending(db, alice, "d", ring=new)
    with db.driver_read() as conn:
        first = store.rows_not_under(conn, new.current.kid, 2)
        rest = store.rows_not_under(conn, new.current.kid, 2, after=first[-1].id)
    assert [row.id for row in first] == ["a", "b"]
    assert [row.id for row in rest] == ["c"]
    assert {row.key_id for row in first + rest} == {old.current.kid}
    row = first[0]
    resealed = seal_secret(new, unseal_secret(new, row.sealed_secret, user_id=alice), user_id=alice)
    with db.driver_write() as conn:
        assert not store.reseal(conn, row.id, "stale", resealed.value, resealed.key_id)
        assert store.reseal(conn, row.id, row.sealed_secret, resealed.value, resealed.key_id)
        assert not store.reseal(conn, row.id, row.sealed_secret, "other", resealed.key_id)
    with db.driver_read() as conn:
        assert [r.id for r in store.rows_not_under(conn, new.current.kid, 10)] == ["b", "c"]


def test_a_sealed_secret_moved_to_another_users_row_does_not_open(db: Database) -> None:
    """The user id is the associated data: copying the column across users yields nothing."""
    alice, mallory = make_user(db), make_user(db, "mallory@example.com")
    secret = add_pending(db, alice, "alices")
    add_pending(db, mallory, "mallorys")
    table = totp_authenticators
    with db.write() as conn:
        stolen = conn.execute(
            select(table.c.sealed_secret).where(table.c.id == "alices")
        ).scalar_one()
        conn.execute(update(table).where(table.c.id == "mallorys").values(sealed_secret=stolen))
    with db.driver_read() as conn:
        mallorys = store.get_pending(conn, "mallorys", mallory)
        alices = store.get_pending(conn, "alices", alice)
    assert mallorys is not None
    assert alices is not None
    with pytest.raises(UnsealError):
        unseal_secret(RING, mallorys.sealed_secret, user_id=mallory)
    assert unseal_secret(RING, alices.sealed_secret, user_id=alice) == secret


def _forms(secret: bytes) -> list[bytes]:
    """The ways a secret could appear in clear: raw, hex, base32, base64."""
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b32encode(secret).rstrip(b"="),
        base64.b64encode(secret).rstrip(b"="),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]


def test_the_database_holds_no_secret_in_clear(db: Database, database_url: str) -> None:
    """No stored row (and on SQLite no byte of the file or its WAL) holds the secret."""
    alice = make_user(db)
    secrets_ = [add_pending(db, alice, f"s{index}") for index in range(5)]
    assert activate(db, "s4", alice)  # removes the others: their pages must not leak either
    with db.read() as conn:
        rows = conn.execute(text("SELECT * FROM keystile_totp_authenticators")).all()
    assert len(rows) == 1
    dumped = repr([tuple(row) for row in rows]).encode()
    if db.dialect == "sqlite":
        path = Path(database_url.removeprefix("sqlite:///"))
        dumped += b"".join(
            candidate.read_bytes()
            for candidate in (path, path.with_name(path.name + "-wal"))
            if candidate.exists()
        )
    for secret in secrets_:
        for form in _forms(secret):
            assert form not in dumped
