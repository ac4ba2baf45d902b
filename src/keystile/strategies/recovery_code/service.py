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

import dataclasses
import functools
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from keystile.clock import Clock
from keystile.crypto.keyring import KeyRing
from keystile.crypto.passwords import PasswordHasher
from keystile.errors import ConfigurationError, InvalidRequestError
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
class PreparedBatch:
    """A batch in display form (shown once) and its stored forms ``(hash, key id)``,
    computed before the transaction that stores it (Argon2id in the ``argon2`` mode)."""

    shown: tuple[str, ...] = field(repr=False)
    stored: tuple[tuple[str, str], ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class RecoveryCodeCheck:
    """A submitted recovery code (normalised), checked for one user in the attempt's transaction.

    ``rotate``: a used code is replaced by one new code, handed out in the answer.
    :meth:`prepare` does the slow part off the write path: in the ``argon2`` mode it finds
    which of the user's unused codes matches (``candidates``), and it hashes a replacement.
    """

    normalised: str = field(repr=False)
    rotate: bool
    service: RecoveryCodeService = field(repr=False)
    candidates: tuple[str, ...] | None = field(default=None, repr=False)
    replacement: PreparedBatch | None = field(default=None, repr=False)

    strategy = STRATEGY

    async def prepare(self, user_id: uuid.UUID) -> RecoveryCodeCheck:
        """The check with its candidate hashes and replacement ready (no write)."""
        return await self.service.prepare_check(self, user_id)

    def verify(self, conn: Executor, user: User, now: datetime) -> VerifiedFactor | None:
        """Use the code up; the verified factor with the remaining count (and a new code)."""
        candidates = self.candidates
        if candidates is None:  # keyed storage: the hash is computed, not searched for
            candidates = tuple(
                core.candidate_hashes(self.service.hashing_keys, user.id, self.normalised)
            )
        if not recovery_codes.consume(conn, user.id, candidates, now):
            return None
        details: dict[str, object] = {"recovery_code_used_at": now}
        if self.replacement is not None:
            [shown] = self.replacement.shown
            [(stored, kid)] = self.replacement.stored
            if recovery_codes.add_one(conn, user.id, stored, kid, now):
                details["recovery_code"] = shown
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
        hasher: PasswordHasher | None = None,
        db: Database,
        gate: AttemptGate,
        hashing_keys: KeyRing,
        clock: Clock,
    ) -> None:
        self.config = config
        self.gate = gate
        self.hashing_keys = hashing_keys
        self._hasher = hasher
        self._db = db
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
            service=self,
        )

    async def prepare_check(
        self, check: RecoveryCodeCheck, user_id: uuid.UUID
    ) -> RecoveryCodeCheck:
        """See :meth:`RecoveryCodeCheck.prepare`.

        In the ``argon2`` mode every unused code of the user is checked (at most a
        batch: the reason that mode is for short custom formats only); the one that
        matches is consumed by its stored hash in the transaction.
        """
        candidates = check.candidates
        if self.config.storage == "argon2" and candidates is None:
            unused = await self._db.query(
                functools.partial(recovery_codes.unused_hashes, user_id=user_id)
            )
            candidates = ()
            for stored_hash, key_id in unused:
                key = self.hashing_keys.find(key_id)
                if key is None:
                    continue
                peppered = core.code_hash(key, user_id, check.normalised)
                if await self._argon2().verify_or_dummy_async(stored_hash, peppered):
                    candidates = (stored_hash,)
                    break
        replacement = None
        if check.rotate:
            replacement = await self.prepare_batch(user_id, count=1)
        return dataclasses.replace(check, candidates=candidates, replacement=replacement)

    async def prepare_batch(self, user_id: uuid.UUID, *, count: int | None = None) -> PreparedBatch:
        """A new batch for the user (``count`` codes, default a whole batch) and its stored
        forms; nothing is stored."""
        shown = core.generate_batch(self.config)[: count or None]
        normalised = [core.normalize(code, length=self.config.length) or "" for code in shown]
        if self.config.storage != "argon2":
            stored = core.hashes_for_storage(self.hashing_keys, user_id, normalised)
        else:
            key = self.hashing_keys.current
            stored = [
                (await self._argon2().hash_async(core.code_hash(key, user_id, code)), key.kid)
                for code in normalised
            ]
        return PreparedBatch(shown=tuple(shown), stored=tuple(stored))

    def _argon2(self) -> PasswordHasher:
        if self._hasher is None:
            raise ConfigurationError(["recovery codes stored with argon2 need a password hasher"])
        return self._hasher

    def store_batch_in(
        self, conn: Executor, user: User, batch: PreparedBatch, now: datetime
    ) -> None:
        """Replace the user's codes by ``batch`` inside the caller's transaction."""
        recovery_codes.replace_batch(conn, user.id, batch.stored, core.new_batch_id(), now)

    async def generate(self, user: User) -> Batch:
        """A new batch for ``user``, replacing the previous one (one transaction)."""
        batch = await self.prepare_batch(user.id)
        now = self._clock.now()
        await self._db.transact(functools.partial(self._store, user=user, batch=batch, now=now))
        return Batch(codes=batch.shown, generated_at=now)

    def _store(self, conn: Executor, *, user: User, batch: PreparedBatch, now: datetime) -> None:
        self.store_batch_in(conn, user, batch, now)

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
