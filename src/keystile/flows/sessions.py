"""Sessions: the access token issued when a sign-in completes, checked on every call.

Every access token's ``jti`` is stored before the token is handed out, so a
token can be revoked (sign-out) and a token whose row is gone or revoked is
refused even while its signature and expiry are fine.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from keystile.clock import Clock
from keystile.errors import UnauthenticatedError
from keystile.store.tokens import TokenStore
from keystile.store.users import User
from keystile.tokens import PURPOSE_ACCESS, InvalidTokenError, TokenClaims, TokenCodec


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A completed sign-in: the user and their new access token."""

    user: User
    token: str = field(repr=False)
    claims: TokenClaims
    expires_in: int

    @property
    def strategies(self) -> tuple[str, ...]:
        """Names of the strategies that authenticated this session, in order."""
        return self.claims.strategies


@dataclass(frozen=True, slots=True)
class Session:
    """A verified bearer token and its user."""

    user: User
    claims: TokenClaims

    @property
    def auth_time(self) -> datetime:
        """When the user last proved who they are."""
        return self.claims.auth_time


class Sessions:
    """Starts, verifies and ends sessions."""

    def __init__(
        self, *, codec: TokenCodec, tokens: TokenStore, clock: Clock, lifetime: timedelta
    ) -> None:
        self._codec = codec
        self._tokens = tokens
        self._clock = clock
        self._lifetime = lifetime

    async def start(
        self, user: User, *, strategies: Sequence[str], amr: Sequence[str]
    ) -> Authenticated:
        """Issue and record an access token for ``user``."""
        now = self._clock.now()
        issued = self._codec.issue(
            subject=user.subject,
            purpose=PURPOSE_ACCESS,
            now=now,
            lifetime=self._lifetime,
            amr=amr,
            strategies=strategies,
        )
        await self._tokens.add(
            jti=issued.claims.jti,
            purpose=PURPOSE_ACCESS,
            subject=user.subject,
            now=now,
            expires_at=issued.claims.expires_at,
        )
        return Authenticated(
            user=user,
            token=issued.token,
            claims=issued.claims,
            expires_in=int(self._lifetime.total_seconds()),
        )

    async def verify(self, token: str) -> Session:
        """The session behind a bearer token.

        Raises:
            UnauthenticatedError: forged, expired, revoked, or the user is gone.
        """
        now = self._clock.now()
        try:
            claims = self._codec.decode(token, purpose=PURPOSE_ACCESS, now=now)
            user_id = uuid.UUID(claims.subject)
        except (InvalidTokenError, ValueError):
            raise UnauthenticatedError() from None
        user = await self._tokens.active_user(jti=claims.jti, user_id=user_id, now=now)
        if user is None:
            raise UnauthenticatedError()
        return Session(user=user, claims=claims)

    async def end(self, session: Session) -> None:
        """Revoke the session's token."""
        await self._tokens.revoke(session.claims.jti, now=self._clock.now())
