"""Re-encrypting every TOTP secret under the newest encryption key (``keystile keys rotate``).

Safe while the service serves and resumable: rows are read in batches by id
(keyset paging, so the walk ends even past rows that cannot be opened), each
secret is resealed outside any transaction, and each batch is written in one
short transaction of conditional updates (:func:`keystile.store.totp.reseal`)
that change a row only if it still holds what was read. A row that changed
meanwhile (the user re-enrolled, or another rotation got there first) is left
as it is; an interrupted run is finished by running it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keystile.crypto.keyring import KeyRing
from keystile.crypto.sealing import UnsealError
from keystile.store import totp as store
from keystile.store.database import Database
from keystile.strategies.totp.sealing import SealedSecret, reseal_secret


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What a rotation did.

    Attributes:
        kid: the newest key's id, which every moved secret is now under.
        moved: secrets re-encrypted under ``kid``.
        changed: rows that changed while the rotation ran, left as they were.
        unopenable_kids: key ids of rows no key of the ring opens (each once),
            with how many rows each; these rows were not touched.
    """

    kid: str
    moved: int = 0
    changed: int = 0
    unopenable_kids: dict[str, int] = field(default_factory=dict)

    @property
    def unopenable(self) -> int:
        """Rows no key of the ring opens."""
        return sum(self.unopenable_kids.values())


def rotate_secrets(db: Database, ring: KeyRing, *, batch_size: int = 500) -> RotationReport:
    """Reseal every TOTP secret not yet under ``ring.current`` with that key.

    Raises:
        ValueError: ``batch_size`` below 1.
        keystile.errors.UnavailableError: the database is unreachable (what
            was written by then stays written; run again to finish).
    """
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    kid = ring.current.kid
    moved = changed = 0
    unopenable: dict[str, int] = {}
    after = ""
    while True:
        with db.driver_read() as conn:
            rows = store.rows_not_under(conn, kid, batch_size, after=after)
        if not rows:
            break
        after = rows[-1].id
        resealed: list[tuple[store.SealedRow, SealedSecret]] = []
        for row in rows:
            try:
                resealed.append((row, reseal_secret(ring, row.sealed_secret, user_id=row.user_id)))
            except UnsealError:
                unopenable[row.key_id] = unopenable.get(row.key_id, 0) + 1
        with db.driver_write() as conn:
            for row, new in resealed:
                if store.reseal(conn, row.id, row.sealed_secret, new.value, new.key_id):
                    moved += 1
                else:
                    changed += 1
    return RotationReport(kid=kid, moved=moved, changed=changed, unopenable_kids=unopenable)
