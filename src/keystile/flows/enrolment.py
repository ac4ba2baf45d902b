"""Enrolling a second factor: what spans the TOTP and recovery-code strategies.

Confirming a TOTP setup turns the authenticator on and, on a first
enrolment of a user who holds no recovery codes, hands out the first batch:
both in the confirmation's one write transaction, so a user never has an
authenticator without the codes that stand in for it (nor codes for an
authenticator that was not turned on). The codes are in that one answer
only.
"""

from __future__ import annotations

import dataclasses
import functools

from keystile.errors import AuthenticationFailedError
from keystile.store import recovery_codes
from keystile.store.database import Database
from keystile.store.prepared import Executor
from keystile.store.users import User
from keystile.strategies.attempts import Admission
from keystile.strategies.recovery_code.service import PreparedBatch, RecoveryCodeService
from keystile.strategies.totp.enrolment import (
    Confirmed,
    Enabled,
    PendingConfirmation,
    TotpEnrolment,
)


class EnrolmentFlow:
    """Confirming a TOTP setup, with the first recovery codes where they are on."""

    def __init__(
        self, *, db: Database, totp: TotpEnrolment, recovery: RecoveryCodeService | None
    ) -> None:
        self._db = db
        self._totp = totp
        self._recovery = recovery

    async def confirm_setup(
        self, user: User, setup_token: str, code: str, *, client_address: str | None = None
    ) -> Enabled:
        """Enable the pending authenticator of ``setup_token`` with a ``code`` it made.

        Raises:
            TooManyAttemptsError: the user's TOTP limit holds (nothing was checked).
            AuthenticationFailedError: a wrong or malformed code, or a setup token
                that is unknown, expired, used, another user's or superseded.
            UnavailableError: the store or the limiter is unreachable.
        """
        pending = await self._totp.begin_confirmation(
            user, setup_token, client_address=client_address
        )
        batch = await self.prepare_batch(user)
        outcome = await self._db.transact(
            functools.partial(self.confirm_in, pending=pending, code=code, batch=batch)
        )
        Admission.settle(outcome.wait)
        if outcome.enabled is None:
            raise AuthenticationFailedError()
        self.notify_enabled(user, outcome.enabled)
        return outcome.enabled

    async def prepare_batch(self, user: User) -> PreparedBatch | None:
        """A batch for a first enrolment, made (and hashed) before the transaction
        (``None``: codes are off)."""
        if self._recovery is None:
            return None
        return await self._recovery.prepare_batch(user.id)

    def notify_enabled(self, user: User, enabled: Enabled) -> None:
        """Tell the user two-step verification is on (never a secret or code)."""
        self._totp.notify_enabled(user, enabled)

    def confirm_in(
        self,
        conn: Executor,
        *,
        pending: PendingConfirmation,
        code: str,
        batch: PreparedBatch | None,
    ) -> Confirmed:
        """The confirmation inside the caller's transaction, with a first enrolment's batch."""
        outcome = self._totp.confirm_in(conn, pending, code)
        user = pending.user
        if (
            outcome.enabled is None
            or batch is None
            or self._recovery is None
            or recovery_codes.has_unused(conn, user.id)
        ):
            return outcome
        self._recovery.store_batch_in(conn, user, batch, outcome.enabled.at)
        return dataclasses.replace(
            outcome, enabled=dataclasses.replace(outcome.enabled, recovery_codes=batch.shown)
        )
