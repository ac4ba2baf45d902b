"""Sessions: the access token issued when a sign-in completes, checked on every call.

Every access token's ``jti`` is stored before the token is handed out, so a
token can be revoked (sign-out) and a token whose row is gone or revoked is
refused even while its signature and expiry are fine.

A token found live is remembered for up to a second
(:mod:`keystile.flows.session_cache`): the process that revokes it refuses it
at once, every other process within that second.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from keystile.clock import Clock
from keystile.errors import UnauthenticatedError
from keystile.flows.session_cache import DEFAULT_MAX_ENTRIES, MAX_TTL, SessionCache, token_key
from keystile.store import tokens
from keystile.store.prepared import Executor
from keystile.store.tokens import TokenStore
from keystile.store.users import User
from keystile.tokens import PURPOSE_ACCESS, InvalidTokenError, TokenClaims, TokenCodec, new_jti


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A completed sign-in: the user and their new access token."""

    user: User
    token: str = field(repr=False)
    claims: TokenClaims
    expires_in: int
    #: What the answer says besides the session (a recovery code's remaining count …).
    details: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def strategies(self) -> tuple[str, ...]:
        """Names of the strategies that authenticated this session, in order."""
        return self.claims.strategies


@dataclass(frozen=True, slots=True)
class SessionRow:
    """The stored half of an access token that is about to be issued."""

    jti: str
    purpose: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PendingSession:
    """An access token decided but not yet signed: its row can be stored first."""

    row: SessionRow
    issued_at: datetime


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
        self,
        *,
        codec: TokenCodec,
        tokens: TokenStore,
        clock: Clock,
        lifetime: timedelta,
        cache_ttl: timedelta = MAX_TTL,
        cache_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        """``cache_ttl`` is how long a token found live is taken as live without asking
        the database again: the bound within which another process's revocation is
        seen (at most 1 s; zero asks every time). ``cache_entries`` bounds the memory.

        Raises:
            ValueError: ``cache_ttl`` or ``cache_entries`` out of range (see
                :class:`~keystile.flows.session_cache.SessionCache`).
        """
        self._codec = codec
        self._tokens = tokens
        self._clock = clock
        self._lifetime = lifetime
        self._cache = SessionCache(clock, ttl=cache_ttl, max_entries=cache_entries)

    def prepare(self) -> PendingSession:
        """Decide the id and expiry of a new access token, so a sign-in's transaction can
        store its row together with everything else the attempt writes."""
        issued_at = self._clock.now().replace(microsecond=0)
        row = SessionRow(
            jti=new_jti(), purpose=PURPOSE_ACCESS, expires_at=issued_at + self._lifetime
        )
        return PendingSession(row=row, issued_at=issued_at)

    def store_in(self, conn: Executor, user: User, pending: PendingSession) -> None:
        """Record ``pending``'s token row inside the sign-in's own transaction."""
        tokens.insert_token(
            conn,
            jti=pending.row.jti,
            purpose=pending.row.purpose,
            subject=user.subject,
            now=pending.issued_at,
            expires_at=pending.row.expires_at,
        )

    def complete(
        self,
        user: User,
        pending: PendingSession,
        *,
        strategies: Sequence[str],
        amr: Sequence[str],
        auth_time: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Authenticated:
        """Sign the token whose row was stored with ``pending`` (pure: no I/O).

        ``auth_time``: when the user last proved who they are (default: now);
        a sign-in finished by a second factor or a step-up sets it to then.
        """
        issued = self._codec.issue(
            subject=user.subject,
            purpose=PURPOSE_ACCESS,
            now=pending.issued_at,
            lifetime=self._lifetime,
            amr=amr,
            strategies=strategies,
            auth_time=auth_time,
            extra=extra,
            jti=pending.row.jti,
        )
        return Authenticated(
            user=user,
            token=issued.token,
            claims=issued.claims,
            expires_in=int(self._lifetime.total_seconds()),
            details=dict(details or {}),
        )

    async def start(
        self, user: User, *, strategies: Sequence[str], amr: Sequence[str]
    ) -> Authenticated:
        """Issue and record an access token for ``user`` (its own transaction)."""
        pending = self.prepare()
        await self._tokens.add(
            jti=pending.row.jti,
            purpose=pending.row.purpose,
            subject=user.subject,
            now=pending.issued_at,
            expires_at=pending.row.expires_at,
        )
        return self.complete(user, pending, strategies=strategies, amr=amr)

    async def verify(self, token: str) -> Session:
        """The session behind a bearer token.

        A token found live less than ``cache_ttl`` ago (and not yet expired) is
        answered from memory, without decoding it again or asking the database.

        Raises:
            UnauthenticatedError: forged, expired, revoked, or the user is gone.
        """
        key = token_key(token) if self._cache.enabled else b""
        remembered = self._cache.get(key) if key else None
        if remembered is not None:
            return remembered
        generation = self._cache.generation
        now = self._clock.now()
        try:
            claims = self._codec.decode(token, purpose=PURPOSE_ACCESS, now=now)
            user_id = uuid.UUID(claims.subject)
        except (InvalidTokenError, ValueError):
            raise UnauthenticatedError() from None
        user = await self._tokens.active_user(jti=claims.jti, user_id=user_id, now=now)
        if user is None:
            raise UnauthenticatedError()
        session = Session(user=user, claims=claims)
        if key:
            self._cache.put(key, session, checked_at=now, generation=generation)
        return session

    def forget(self, jti: str) -> None:
        """A token revoked by another path (a step-up) is refused here from now on."""
        self._cache.drop(jti)

    def forget_user(self, subject: str) -> None:
        """Every token of ``subject``, revoked together (an MFA reset), is refused here
        from now on."""
        self._cache.drop_subject(subject)

    async def end(self, session: Session) -> None:
        """Revoke the session's token: refused here from now on, elsewhere within
        ``cache_ttl``."""
        try:
            await self._tokens.revoke(session.claims.jti, now=self._clock.now())
        finally:
            # After the revocation committed (or failed): a lookup in flight
            # since before it must not store the token as live again.
            self._cache.drop(session.claims.jti)
