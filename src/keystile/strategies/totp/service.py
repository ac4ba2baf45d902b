"""TOTP as a second factor: checking a submitted code for the sign-in flows.

The check runs inside the attempt's write transaction: the user's active
authenticator is read, its secret unsealed, the code compared in constant
time over the drift window, and the matched time step recorded by one
conditional ``UPDATE`` (``keystile.store.totp.record_step``), so a code is
accepted once on every path (second factor, step-up) however many requests
carry it at once. A malformed, wrong, replayed code, or a user without an
authenticator, is one failure, counted like any other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from keystile.crypto.keyring import KeyRing
from keystile.store import totp as authenticators
from keystile.store.prepared import Executor
from keystile.store.users import User
from keystile.strategies.attempts import AttemptGate
from keystile.strategies.factors import VerifiedFactor
from keystile.strategies.totp.config import TotpConfig
from keystile.strategies.totp.core import verify_totp
from keystile.strategies.totp.rfc6238 import Algorithm
from keystile.strategies.totp.sealing import unseal_secret
from keystile.tokens import AMR_OTP

STRATEGY = "totp"
#: The one action every TOTP attempt is counted under, so its limit is per user
#: across the second factor, step-up and enrolment.
ACTION = "verify"
_MAX_CODE_INPUT = 64


@dataclass(frozen=True, slots=True)
class TotpCodeCheck:
    """A submitted TOTP code, checked for one user inside the attempt's transaction."""

    code: str = field(repr=False)
    window: int
    encryption_keys: KeyRing = field(repr=False)

    strategy = STRATEGY

    async def prepare(self, user_id: uuid.UUID) -> TotpCodeCheck:
        """Nothing to do outside the transaction: the check is cheap."""
        return self

    def verify(self, conn: Executor, user: User, now: datetime) -> VerifiedFactor | None:
        """The verified factor, or ``None``; an accepted code's step is recorded here."""
        active = authenticators.get_active(conn, user.id)
        if active is None:
            return None
        secret = unseal_secret(self.encryption_keys, active.sealed_secret, user_id=user.id)
        algorithm: Algorithm = "SHA1"
        if active.algorithm in ("SHA256", "SHA512"):
            algorithm = "SHA256" if active.algorithm == "SHA256" else "SHA512"
        check = verify_totp(
            secret,
            self.code,
            now=now,
            period=active.period,
            window=self.window,
            last_step=active.last_step,
            digits=active.digits,
            algorithm=algorithm,
        )
        if not check.accepted or check.step is None:
            return None
        if not authenticators.record_step(conn, active.id, check.step):
            return None  # a concurrent attempt accepted this step first
        return VerifiedFactor(user=user, strategy=STRATEGY, amr=AMR_OTP, at=now)


class TotpService:
    """The TOTP strategy's check and its brute-force gate (per user, every TOTP action)."""

    def __init__(self, *, config: TotpConfig, gate: AttemptGate, encryption_keys: KeyRing) -> None:
        self.config = config
        self.gate = gate
        self._keys = encryption_keys

    def claim(self, code: str) -> TotpCodeCheck:
        """A submitted code, to be checked by a flow (nothing is checked yet)."""
        return TotpCodeCheck(
            code=code[:_MAX_CODE_INPUT], window=self.config.window, encryption_keys=self._keys
        )
