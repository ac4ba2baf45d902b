"""The MFA API's questions about a sign-in held for a second factor (Auth0's ``/mfa/*``).

The caller proves nothing but the ``mfa_token`` (the bearer), so the answers
say only what that sign-in may be finished with.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from keystile.clock import Clock
from keystile.errors import UnauthenticatedError
from keystile.flows.mfa_tokens import MfaTokens
from keystile.store import recovery_codes
from keystile.store import totp as authenticators
from keystile.store.database import Database
from keystile.store.prepared import Executor


@dataclass(frozen=True, slots=True)
class Authenticator:
    """One of Auth0's authenticator entries: ``otp`` or ``recovery-code``."""

    id: str
    authenticator_type: str
    active: bool


class MfaApi:
    """Answers of ``/mfa/authenticators`` and ``/mfa/challenge``."""

    def __init__(
        self, *, db: Database, mfa_tokens: MfaTokens, clock: Clock, recovery_codes_enabled: bool
    ) -> None:
        self._db = db
        self._mfa = mfa_tokens
        self._clock = clock
        self._recovery = recovery_codes_enabled

    async def authenticators(self, mfa_token: str) -> list[Authenticator]:
        """The user's enrolled authenticators, as the MFA token's sign-in may use them.

        Raises:
            UnauthenticatedError: an unknown, used, burned or expired MFA token.
        """
        return await self._db.query(
            functools.partial(self._list, token=mfa_token, now=self._clock.now())
        )

    def _list(self, conn: Executor, *, token: str, now: datetime) -> list[Authenticator]:
        pending = self._mfa.find_in(conn, token, now=now)
        if pending is None:
            raise UnauthenticatedError()
        found: list[Authenticator] = []
        active = authenticators.get_active(conn, pending.user_id)
        if active is not None:
            found.append(Authenticator(f"totp|{active.id}", "otp", True))
        if self._recovery and recovery_codes.has_unused(conn, pending.user_id):
            found.append(Authenticator("recovery-code|default", "recovery-code", True))
        return found

    async def challenge(self, mfa_token: str, challenge_type: str) -> str:
        """The challenge type the client should prompt for (``otp``: nothing is sent).

        Raises:
            UnauthenticatedError: an unknown, used, burned or expired MFA token.
            ValueError: a challenge type the sign-in cannot be finished with.
        """
        now = self._clock.now()
        pending = await self._db.query(
            functools.partial(self._mfa.find_in, token=mfa_token, now=now)
        )
        if pending is None:
            raise UnauthenticatedError()
        if "otp" not in challenge_type.split() or "totp" not in pending.methods:
            raise ValueError("unsupported challenge type")
        return "otp"
