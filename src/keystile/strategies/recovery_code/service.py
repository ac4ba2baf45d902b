"""Recovery codes: generate a batch, and check a submitted code for the flows.

A code is checked inside the attempt's write transaction: its keyed hash
(over the user id and the normalised code, under every hashing key) finds
the row by a unique index, and one conditional ``UPDATE … WHERE used_at IS
NULL`` uses it up, so of any number of parallel uses exactly one succeeds and
the cost does not grow with the number of stored codes. Input that cannot be
a code after normalising is refused before anything is counted
(:class:`~keystile.errors.InvalidRequestError`). Plain codes exist only in
the answer that creates them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime

from keystile.clock import Clock
from keystile.crypto.keyring import KeyRing
from keystile.errors import InvalidRequestError
from keystile.store import recovery_codes
from keystile.store.database import Database
from keystile.store.prepared import Executor
from keystile.store.users import User
from keystile.strategies.attempts import AttemptGate
from keystile.strategies.factors import VerifiedFactor
from keystile.strategies.recovery_code import core
from keystile.strategies.recovery_code.config import RecoveryCodeConfig
from keystile.tokens import AMR_OTP

STRATEGY = "recovery_code"


@dataclass(frozen=True, slots=True)
class RecoveryCodeCheck:
    """A submitted recovery code (normalised), checked for one user in the attempt's transaction.

    ``rotate``: a used code is replaced by one new code, handed out in the answer.
    """

    normalised: str = field(repr=False)
    rotate: bool
    config: RecoveryCodeConfig
    hashing_keys: KeyRing = field(repr=False)

    strategy = STRATEGY

    def verify(self, conn: Executor, user: User, now: datetime) -> VerifiedFactor | None:
        """Use the code up; the verified factor with the remaining count (and a new code)."""
        candidates = core.candidate_hashes(self.hashing_keys, user.id, self.normalised)
        if not recovery_codes.consume(conn, user.id, candidates, now):
            return None
        details: dict[str, object] = {"recovery_code_used_at": now}
        if self.rotate:
            replacement = core.new_code(self.config.length)
            [(stored, kid)] = core.hashes_for_storage(self.hashing_keys, user.id, [replacement])
            if recovery_codes.add_one(conn, user.id, stored, kid, now):
                details["recovery_code"] = core.display(replacement, self.config.group_size)
        details["recovery_codes_remaining"] = recovery_codes.status(conn, user.id).remaining
        return VerifiedFactor(user=user, strategy=STRATEGY, amr=AMR_OTP, at=now, details=details)


@dataclass(frozen=True, slots=True)
class Batch:
    """A new batch in display form (shown once) and when it was made."""

    codes: tuple[str, ...] = field(repr=False)
    generated_at: datetime


@dataclass(frozen=True, slots=True)
class Status:
    """How many of the user's codes remain (``low`` at the configured threshold or below)."""

    configured: bool
    remaining: int
    total: int
    generated_at: datetime | None
    low: bool


class RecoveryCodeService:
    """The recovery-code strategy: batches, status, and the check the flows run."""

    def __init__(
        self,
        *,
        config: RecoveryCodeConfig,
        db: Database,
        gate: AttemptGate,
        hashing_keys: KeyRing,
        clock: Clock,
    ) -> None:
        self.config = config
        self.gate = gate
        self._db = db
        self._ring = hashing_keys
        self._clock = clock

    def claim(self, code: str, *, rotate: bool | None = None) -> RecoveryCodeCheck:
        """Normalise a submitted code for a flow (nothing is checked or counted yet).

        ``rotate`` overrides the configured mode (the OAuth grant always rotates).

        Raises:
            InvalidRequestError: the input cannot be a code (no attempt is spent).
        """
        normalised = core.normalize(code, length=self.config.length)
        if normalised is None:
            raise InvalidRequestError(
                "The recovery code is malformed.",
                {"user.code": f"must be {self.config.length} symbols of Crockford base32"},
            )
        return RecoveryCodeCheck(
            normalised=normalised,
            rotate=self.config.mode == "rotate_on_use" if rotate is None else rotate,
            config=self.config,
            hashing_keys=self._ring,
        )

    def new_batch(self) -> tuple[list[str], list[str]]:
        """A batch in display form and the normalised codes (pure: nothing stored)."""
        shown = core.generate_batch(self.config)
        return shown, [core.normalize(code, length=self.config.length) or "" for code in shown]

    def store_batch_in(
        self, conn: Executor, user: User, normalised: list[str], now: datetime
    ) -> None:
        """Replace the user's codes by ``normalised`` inside the caller's transaction."""
        recovery_codes.replace_batch(
            conn,
            user.id,
            core.hashes_for_storage(self._ring, user.id, normalised),
            core.new_batch_id(),
            now,
        )

    async def generate(self, user: User) -> Batch:
        """A new batch for ``user``, replacing the previous one (one transaction)."""
        shown, normalised = self.new_batch()
        now = self._clock.now()
        await self._db.transact(
            functools.partial(self._store, user=user, normalised=normalised, now=now)
        )
        return Batch(codes=tuple(shown), generated_at=now)

    def _store(self, conn: Executor, *, user: User, normalised: list[str], now: datetime) -> None:
        self.store_batch_in(conn, user, normalised, now)

    async def status(self, user: User) -> Status:
        """The user's remaining and total codes."""
        found = await self._db.query(functools.partial(recovery_codes.status, user_id=user.id))
        return Status(
            configured=found.total > 0,
            remaining=found.remaining,
            total=found.total,
            generated_at=found.generated_at,
            low=found.remaining <= self.config.low_threshold,
        )

    async def has_unused(self, user: User) -> bool:
        """Whether ``user`` holds at least one unused code (the guard's question: one probe)."""
        return await self._db.query(functools.partial(recovery_codes.has_unused, user_id=user.id))
