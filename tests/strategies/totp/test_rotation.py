"""Key rotation of TOTP secrets, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import select

from keystile.crypto.keyring import KeyRing
from keystile.store import totp as store
from keystile.store.database import Database
from keystile.store.tables import totp_authenticators
from keystile.strategies.totp.rotation import RotationReport, rotate_secrets
from keystile.strategies.totp.sealing import unseal_secret
from tests.store.test_totp import NOW, STEP, add_pending, make_user

OLD = KeyRing(["o" * 40])
OLDER = KeyRing(["p" * 40])
ROTATED = KeyRing(["n" * 40, "o" * 40])
NEW_ONLY = KeyRing(["n" * 40])


def stored(db: Database) -> dict[str, tuple[uuid.UUID, str, str]]:
    table = totp_authenticators
    with db.read() as conn:
        rows = conn.execute(
            select(table.c.id, table.c.user_id, table.c.sealed_secret, table.c.key_id)
        )
        return {row.id: (row.user_id, row.sealed_secret, row.key_id) for row in rows}


def enrol_many(db: Database, count: int, ring: KeyRing = OLD) -> dict[str, bytes]:
    """``count`` authenticators over three users; their secrets by id."""
    users = [make_user(db, f"user{index}@example.com") for index in range(3)]
    return {
        f"a{index:02}": add_pending(db, users[index % 3], f"a{index:02}", ring=ring)
        for index in range(count)
    }


def test_every_secret_moves_to_the_new_key_and_opens_without_the_old(db: Database) -> None:
    """Batches of 3 over 8 rows: all move, open with the new key alone; a rerun moves none."""
    secrets = enrol_many(db, 8)
    report = rotate_secrets(db, ROTATED, batch_size=3)
    assert report == RotationReport(kid=NEW_ONLY.current.kid, moved=8)
    for authenticator_id, (user_id, sealed, kid) in stored(db).items():
        assert kid == NEW_ONLY.current.kid
        assert unseal_secret(NEW_ONLY, sealed, user_id=user_id) == secrets[authenticator_id]
    assert rotate_secrets(db, ROTATED, batch_size=3) == RotationReport(kid=NEW_ONLY.current.kid)


def test_rows_no_key_opens_are_reported_and_the_rest_still_move(db: Database) -> None:
    """A row under a key missing from the ring is left untouched and named; the walk ends."""
    secrets = enrol_many(db, 4)
    user = make_user(db, "orphan@example.com")
    add_pending(db, user, "a01x", ring=OLDER)  # sorts among the others
    before = stored(db)["a01x"]
    report = rotate_secrets(db, ROTATED, batch_size=2)
    assert (report.moved, report.changed, report.unopenable) == (4, 0, 1)
    assert report.unopenable_kids == {OLDER.current.kid: 1}
    after = stored(db)
    assert after["a01x"] == before
    for authenticator_id in secrets:
        assert after[authenticator_id][2] == NEW_ONLY.current.kid


def test_rotation_while_codes_are_being_accepted_loses_nothing(db: Database) -> None:
    """Steps recorded during a rotation stay recorded; every secret ends under the new key."""
    secrets: dict[str, bytes] = {}
    owners: dict[str, uuid.UUID] = {}
    for index in range(12):
        user_id = make_user(db, f"user{index}@example.com")
        authenticator_id = f"a{index:02}"
        secrets[authenticator_id] = add_pending(db, user_id, authenticator_id, ring=OLD)
        owners[authenticator_id] = user_id
        with db.driver_write() as conn:
            assert store.activate(conn, authenticator_id, user_id, STEP, NOW)
    stop = threading.Event()
    accepted: dict[str, int] = {}

    def serve() -> None:
        step = STEP
        while not stop.is_set():
            step += 1
            for authenticator_id in owners:
                with db.driver_write() as conn:
                    if store.record_step(conn, authenticator_id, step):
                        accepted[authenticator_id] = step

    server = threading.Thread(target=serve)
    server.start()
    try:
        report = rotate_secrets(db, ROTATED, batch_size=4)
    finally:
        stop.set()
        server.join()
    assert report == RotationReport(kid=NEW_ONLY.current.kid, moved=12)
    rows = stored(db)
    with db.driver_read() as conn:
        for authenticator_id, user_id in owners.items():
            _, sealed, kid = rows[authenticator_id]
            assert kid == NEW_ONLY.current.kid
            assert unseal_secret(NEW_ONLY, sealed, user_id=user_id) == secrets[authenticator_id]
            active = store.get_active(conn, user_id)
            assert active is not None
            assert active.last_step == accepted.get(authenticator_id, STEP)
