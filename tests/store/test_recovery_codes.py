"""The recovery-code repository, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text

from keystile.crypto.keyring import KeyRing
from keystile.crypto.passwords import PasswordHasher
from keystile.store import recovery_codes as store
from keystile.store.database import Database
from keystile.store.recovery_codes import RecoveryCodeStatus
from keystile.store.tables import metadata, users
from keystile.strategies.recovery_code import core
from keystile.strategies.recovery_code.config import RecoveryCodeConfig

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
RING = KeyRing(["h" * 40])


def new_user(db: Database, email: str) -> uuid.UUID:
    user_id = uuid.uuid4()
    with db.write() as conn:
        conn.execute(insert(users).values(id=user_id, email=email, created_at=NOW, updated_at=NOW))
    return user_id


def issue(
    db: Database, user_id: uuid.UUID, *, ring: KeyRing = RING, now: datetime = NOW
) -> list[str]:
    """A new batch for the user, stored as the flow will store it; the codes in normal form."""
    codes = [core.normalize(code) for code in core.generate_batch(RecoveryCodeConfig())]
    normalised = [code for code in codes if code is not None]
    with db.driver_write() as conn:
        store.replace_batch(
            conn,
            user_id,
            core.hashes_for_storage(ring, user_id, normalised),
            core.new_batch_id(),
            now,
        )
    return normalised


def use(
    db: Database, user_id: uuid.UUID, code: str, *, ring: KeyRing = RING, now: datetime = LATER
) -> bool:
    with db.driver_write() as conn:
        return store.consume(conn, user_id, core.candidate_hashes(ring, user_id, code), now)


def status(db: Database, user_id: uuid.UUID) -> RecoveryCodeStatus:
    with db.driver_read() as conn:
        return store.status(conn, user_id)


def test_every_code_works_once_in_any_order(db: Database) -> None:
    """Ten codes used in a shuffled order: each succeeds once, then never again."""
    alice = new_user(db, "alice@example.com")
    codes = issue(db, alice)
    random.shuffle(codes)
    assert [use(db, alice, code) for code in codes] == [True] * 10
    assert [use(db, alice, code) for code in codes] == [False] * 10
    assert status(db, alice) == RecoveryCodeStatus(remaining=0, total=10, generated_at=NOW)


def test_status_counts_remaining_and_total(db: Database) -> None:
    """No batch: (0, 0, None); a new batch: (10, 10, its time); one use: (9, 10, same time)."""
    alice = new_user(db, "alice@example.com")
    assert status(db, alice) == RecoveryCodeStatus(0, 0, None)
    with db.driver_read() as conn:
        assert store.has_unused(conn, alice) is False
    codes = issue(db, alice)
    assert status(db, alice) == RecoveryCodeStatus(10, 10, NOW)
    assert use(db, alice, codes[3]) is True
    assert status(db, alice) == RecoveryCodeStatus(9, 10, NOW)
    with db.driver_read() as conn:
        assert store.has_unused(conn, alice) is True


def test_another_users_code_never_matches(db: Database) -> None:
    """Bob's code fails for Alice and leaves Bob's code unused; Alice's fails for Bob."""
    alice = new_user(db, "alice@example.com")
    bob = new_user(db, "bob@example.com")
    alice_codes = issue(db, alice)
    bob_codes = issue(db, bob)
    assert use(db, alice, bob_codes[0]) is False
    assert use(db, bob, alice_codes[0]) is False
    # Even Bob's own stored hashes, submitted for Alice, match nothing.
    with db.driver_write() as conn:
        bob_hashes = core.candidate_hashes(RING, bob, bob_codes[0])
        assert store.consume(conn, alice, bob_hashes, LATER) is False
    assert status(db, bob) == RecoveryCodeStatus(10, 10, NOW)
    assert use(db, bob, bob_codes[0]) is True


def test_the_old_batch_fails_after_replace(db: Database) -> None:
    """A new batch removes every earlier code, used or not; the new ones work."""
    alice = new_user(db, "alice@example.com")
    first = issue(db, alice)
    assert use(db, alice, first[0]) is True
    second = issue(db, alice, now=LATER)
    assert [use(db, alice, code) for code in first] == [False] * 10
    assert status(db, alice) == RecoveryCodeStatus(10, 10, LATER)
    assert use(db, alice, second[0]) is True


def test_fifty_parallel_uses_of_one_code_give_exactly_one_success(db: Database) -> None:
    """50 threads, each its own write transaction, submit one code: one True, 49 False."""
    alice = new_user(db, "alice@example.com")
    code = issue(db, alice)[0]
    start = threading.Barrier(50)
    results: list[bool] = []
    lock = threading.Lock()

    def attempt() -> None:
        start.wait()
        outcome = use(db, alice, code)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 49 + [True]
    assert status(db, alice).remaining == 9


def test_parallel_replacements_leave_exactly_one_batch(db: Database) -> None:
    """Ten concurrent regenerations: the user ends with one batch of ten codes."""
    alice = new_user(db, "alice@example.com")
    start = threading.Barrier(10)

    def regenerate() -> None:
        start.wait()
        issue(db, alice)

    threads = [threading.Thread(target=regenerate) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert status(db, alice) == RecoveryCodeStatus(10, 10, NOW)
    with db.read() as conn:
        batches = conn.execute(
            text("SELECT COUNT(DISTINCT batch_id) FROM keystile_recovery_codes")
        ).scalar_one()
    assert batches == 1


def test_codes_stored_before_a_key_rotation_still_work(db: Database) -> None:
    """Hashed under the old key: found through the rotated ring's candidates; gone with the key."""
    alice = new_user(db, "alice@example.com")
    old = KeyRing(["h" * 40])
    codes = issue(db, alice, ring=old)
    rotated = KeyRing(["n" * 40, "h" * 40])
    assert use(db, alice, codes[0], ring=rotated) is True
    assert use(db, alice, codes[1], ring=KeyRing(["n" * 40])) is False


def test_add_one_joins_the_current_batch(db: Database) -> None:
    """rotate_on_use: the new code joins the batch and works; with no batch nothing is added."""
    alice = new_user(db, "alice@example.com")
    codes = issue(db, alice)
    assert use(db, alice, codes[0]) is True
    replacement = core.new_code()
    [(code_hash, key_id)] = core.hashes_for_storage(RING, alice, [replacement])
    with db.driver_write() as conn:
        assert store.add_one(conn, alice, code_hash, key_id, LATER) is True
    assert status(db, alice) == RecoveryCodeStatus(10, 11, NOW)
    with db.read() as conn:
        batches = conn.execute(
            text("SELECT COUNT(DISTINCT batch_id) FROM keystile_recovery_codes")
        ).scalar_one()
    assert batches == 1
    assert use(db, alice, replacement) is True

    bob = new_user(db, "bob@example.com")
    [(bob_hash, key_id)] = core.hashes_for_storage(RING, bob, [core.new_code()])
    with db.driver_write() as conn:
        assert store.add_one(conn, bob, bob_hash, key_id, LATER) is False
    assert status(db, bob) == RecoveryCodeStatus(0, 0, None)


def test_argon2_codes_are_verified_over_the_unused_hashes(db: Database) -> None:
    """argon2 storage: the unused rows are listed, the match found and consumed by its hash."""
    hasher = PasswordHasher.from_preset("test")
    alice = new_user(db, "alice@example.com")
    codes = ["ABCD1234", "EFGH5678", "JKMN9012"]
    rows = [
        (core.argon2_hash(hasher, RING.current, alice, code), RING.current.kid) for code in codes
    ]
    with db.driver_write() as conn:
        store.replace_batch(conn, alice, rows, core.new_batch_id(), NOW)

    def verify(code: str) -> bool:
        with db.driver_write() as conn:
            unused = store.unused_hashes(conn, alice)
            matched = [
                row[0] for row in unused if core.argon2_verify(hasher, RING, row, alice, code)
            ]
            return store.consume(conn, alice, matched, LATER)

    with db.driver_read() as conn:
        assert store.unused_hashes(conn, alice) == rows
    assert verify("EFGH5678") is True
    assert verify("EFGH5678") is False
    assert verify("ZZZZ0000") is False
    with db.driver_read() as conn:
        assert store.unused_hashes(conn, alice) == [rows[0], rows[2]]


def test_delete_for_user_removes_only_that_users_codes(db: Database) -> None:
    """An MFA reset: Alice's codes are gone (count returned) and fail; Bob's still work."""
    alice = new_user(db, "alice@example.com")
    bob = new_user(db, "bob@example.com")
    alice_codes = issue(db, alice)
    bob_codes = issue(db, bob)
    with db.driver_write() as conn:
        assert store.delete_for_user(conn, alice) == 10
    assert use(db, alice, alice_codes[0]) is False
    assert status(db, alice) == RecoveryCodeStatus(0, 0, None)
    assert use(db, bob, bob_codes[0]) is True


def test_no_code_is_stored_in_clear(db: Database) -> None:
    """Every column of every table, read raw: no code in normal or display form, any case."""
    alice = new_user(db, "alice@example.com")
    codes = issue(db, alice)
    use(db, alice, codes[0])
    with db.read() as conn:
        dump = " ".join(
            str(value)
            for table in metadata.sorted_tables
            for row in conn.execute(text(f"SELECT * FROM {table.name}"))  # noqa: S608
            for value in row
        ).upper()
    for code in codes:
        assert code not in dump
        assert core.display(code) not in dump
    hashes = {core.code_hash(RING.current, alice, code) for code in codes}
    assert all(code_hash.upper() in dump for code_hash in hashes)
