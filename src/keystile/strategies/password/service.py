"""Password actions: sign in and register.

Unknown email and wrong password take the same path through Argon2 (a dummy
hash stands in for the missing account) and end in the same
:class:`~keystile.errors.AuthenticationFailedError`.
"""

from __future__ import annotations

import anyio.to_thread

from keystile.clock import Clock
from keystile.crypto.passwords import MAX_PASSWORD_LENGTH, PasswordHasher
from keystile.errors import AuthenticationFailedError, InvalidRequestError
from keystile.flows.sessions import Authenticated, PendingSession, Sessions
from keystile.limits.protection import BruteForceGuard
from keystile.store.sign_ins import SignInStore
from keystile.store.users import User, UserStore
from keystile.strategies.attempts import AttemptGate, parse_identity
from keystile.strategies.audit_trail import AuditTrail
from keystile.strategies.password.config import PasswordConfig
from keystile.tokens import AMR_PASSWORD

STRATEGY = "password"


class PasswordService:
    """Sign-in and registration with a password."""

    def __init__(
        self,
        *,
        config: PasswordConfig,
        users: UserStore,
        hasher: PasswordHasher,
        sessions: Sessions,
        sign_ins: SignInStore,
        clock: Clock,
        guard: BruteForceGuard,
        audit: AuditTrail,
    ) -> None:
        self.config = config
        self._users = users
        self._hasher = hasher
        self._sessions = sessions
        self._sign_ins = sign_ins
        self._clock = clock
        self._audit = audit
        self._gate = AttemptGate(strategy=STRATEGY, guard=guard, audit=audit, clock=clock)

    async def _authenticate(
        self,
        email: str,
        password: str,
        client_address: str | None,
        pending: PendingSession | None,
    ) -> User:
        normalised = parse_identity(email)
        if len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidRequestError(
                "The password is too long.",
                {"user.password": f"must be at most {MAX_PASSWORD_LENGTH} characters"},
            )
        await self._gate.enter("sign_in", normalised, client_address)
        user = await self._users.get_by_email(normalised)
        stored = user.password_hash if user is not None else None
        valid = await anyio.to_thread.run_sync(self._hasher.verify_or_dummy, stored, password)
        accepted = user if valid else None
        now = self._clock.now()
        # The audit record and the new session's row: one transaction.
        await self._sign_ins.finish(
            user=accepted,
            session=pending.row if pending else None,
            audit=self._audit.event(
                strategy=STRATEGY,
                action="sign_in",
                success=accepted is not None,
                now=now,
                identity=normalised,
                subject=accepted.subject if accepted else None,
                client_address=client_address,
            ),
            now=now,
        )
        if accepted is None or stored is None:
            raise AuthenticationFailedError()
        if self._hasher.needs_rehash(stored):
            new_hash = await anyio.to_thread.run_sync(self._hasher.hash, password)
            await self._users.set_password_hash(accepted.id, new_hash, now=now)
        return accepted

    async def authenticate(
        self, email: str, password: str, *, client_address: str | None = None
    ) -> User:
        """The user whose credentials these are; the attempt is counted first.

        Raises:
            InvalidRequestError: the email is malformed.
            TooManyAttemptsError: a brute-force limit holds for this email.
            AuthenticationFailedError: unknown email or wrong password, indistinguishably.
            UnavailableError: the store or the limiter is unreachable.
        """
        return await self._authenticate(email, password, client_address, None)

    async def sign_in(
        self, email: str, password: str, *, client_address: str | None = None
    ) -> Authenticated:
        """Authenticate and start a session (the session row is written with the audit record)."""
        pending = self._sessions.prepare()
        user = await self._authenticate(email, password, client_address, pending)
        return self._sessions.complete(user, pending, strategies=[STRATEGY], amr=[AMR_PASSWORD])

    async def create_user(self, email: str, password: str) -> User:
        """Create a user with a password (administration and registration).

        Raises:
            InvalidRequestError: malformed email or a password that is too short or long.
            AlreadyRegisteredError: the email is taken.
        """
        normalised = parse_identity(email)
        if len(password) < self.config.min_length:
            raise InvalidRequestError(
                "The password is too short.",
                {"user.password": f"must be at least {self.config.min_length} characters"},
            )
        if len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidRequestError(
                "The password is too long.",
                {"user.password": f"must be at most {MAX_PASSWORD_LENGTH} characters"},
            )
        password_hash = await anyio.to_thread.run_sync(self._hasher.hash, password)
        return await self._users.create(
            normalised, password_hash=password_hash, now=self._clock.now()
        )

    async def register(
        self, email: str, password: str, *, client_address: str | None = None
    ) -> Authenticated:
        """Create a user and sign them in (rate-limited like sign-in)."""
        await self._gate.enter("register", parse_identity(email), client_address)
        user = await self.create_user(email, password)
        return await self._sessions.start(user, strategies=[STRATEGY], amr=[AMR_PASSWORD])
