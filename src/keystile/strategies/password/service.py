"""Password actions: sign in, register, confirm a registration.

Unknown email and wrong password take the same path through Argon2 (a dummy
hash stands in for the missing account) and end in the same
:class:`~keystile.errors.AuthenticationFailedError`.

A registration never makes a usable password for an address nobody proved:
``register`` keeps the new password's hash pending and mails a confirmation
code to the address; only ``confirm_registration`` with that code gives the
password to the account (creating it, or replacing the password of an
existing one, since the code proves the address). ``register`` answers the
same for new and existing addresses, so it tells nobody which accounts exist.
"""

from __future__ import annotations

from datetime import timedelta

from keystile.clock import Clock
from keystile.crypto.alphabets import UNAMBIGUOUS_UPPERCASE, generate_code
from keystile.crypto.hashing import keyed_hash, keyed_hashes
from keystile.crypto.keyring import KeyRing
from keystile.crypto.passwords import MAX_PASSWORD_LENGTH, PasswordHasher
from keystile.errors import AuthenticationFailedError, ConfigurationError, InvalidRequestError
from keystile.flows.sessions import Authenticated, PendingSession, Sessions
from keystile.limits.protection import BruteForceGuard
from keystile.senders.base import Message
from keystile.senders.dispatch import Dispatcher, FailureCallback
from keystile.senders.messages import registration_message
from keystile.store.registrations import RegistrationStore
from keystile.store.sign_ins import SignInStore
from keystile.store.users import User, UserStore
from keystile.strategies.attempts import AttemptGate, parse_identity
from keystile.strategies.audit_trail import AuditTrail
from keystile.strategies.password.config import PasswordConfig
from keystile.tokens import AMR_PASSWORD

STRATEGY = "password"

#: Confirmation codes: 8 symbols of a 21-letter alphabet (3.8e10 codes), valid 30 minutes.
CONFIRMATION_CODE_LENGTH = 8
CONFIRMATION_LIFETIME = timedelta(minutes=30)
_MAX_CODE_INPUT = 64


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
        registrations: RegistrationStore | None = None,
        dispatcher: Dispatcher | None = None,
        hashing_keys: KeyRing | None = None,
        service_name: str = "Keystile",
    ) -> None:
        self.config = config
        self._users = users
        self._hasher = hasher
        self._sessions = sessions
        self._sign_ins = sign_ins
        self._clock = clock
        self._audit = audit
        self._gate = AttemptGate(strategy=STRATEGY, guard=guard, audit=audit, clock=clock)
        self._registrations = registrations
        self._dispatcher = dispatcher
        self._ring = hashing_keys
        self._service_name = service_name

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
        valid = await self._hasher.verify_or_dummy_async(stored, password)
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
            new_hash = await self._hasher.hash_async(password)
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
        self._check_new_password(password)
        password_hash = await self._hasher.hash_async(password)
        return await self._users.create(
            normalised, password_hash=password_hash, now=self._clock.now()
        )

    async def register(
        self, email: str, password: str, *, client_address: str | None = None
    ) -> None:
        """Keep ``password`` pending and mail a confirmation code to ``email``.

        Answers nothing either way (the route says ``{"status": "ok"}``): the
        same work and answer for a new and an existing address. The password
        works only after :meth:`confirm_registration`.

        Raises:
            InvalidRequestError: malformed email, password too short or long.
            TooManyAttemptsError: the registration limit for this email holds.
            ConfigurationError: the service was built without a registration store.
        """
        normalised = parse_identity(email)
        self._check_new_password(password)
        registrations, dispatcher, ring = self._registration_parts()
        await self._gate.enter("register", normalised, client_address)
        password_hash = await self._hasher.hash_async(password)
        now = self._clock.now()
        code = generate_code(UNAMBIGUOUS_UPPERCASE, CONFIRMATION_CODE_LENGTH)
        expires_at = now + CONFIRMATION_LIFETIME
        await registrations.replace_pending(
            identity=normalised,
            code_id=keyed_hash(ring.current, "password_registration", normalised, code),
            password_hash=password_hash,
            now=now,
            expires_at=expires_at,
        )
        await self._audit.record(
            strategy=STRATEGY,
            action="register",
            success=True,
            now=now,
            identity=normalised,
            client_address=client_address,
        )
        message = registration_message(
            to=normalised,
            code=code,
            expires_at=expires_at,
            lifetime=CONFIRMATION_LIFETIME,
            service_name=self._service_name,
        )
        dispatcher.submit(message, on_failure=self._delivery_failed(normalised))

    async def confirm_registration(
        self, email: str, code: str, *, client_address: str | None = None
    ) -> Authenticated:
        """Prove the address with the mailed code: the pending password becomes the account's.

        Counted against the registration limit first; a wrong, expired, used or
        unknown code is one :class:`AuthenticationFailedError`.
        """
        normalised = parse_identity(email)
        registrations, _dispatcher, ring = self._registration_parts()
        await self._gate.enter("register", normalised, client_address)
        now = self._clock.now()
        submitted = code[:_MAX_CODE_INPUT].strip().upper()
        user = await registrations.confirm(
            identity=normalised,
            code_ids=keyed_hashes(ring, "password_registration", normalised, submitted),
            now=now,
        )
        await self._audit.record(
            strategy=STRATEGY,
            action="confirm_registration",
            success=user is not None,
            now=now,
            identity=normalised,
            subject=user.subject if user else None,
            client_address=client_address,
        )
        if user is None:
            raise AuthenticationFailedError()
        return await self._sessions.start(user, strategies=[STRATEGY], amr=[AMR_PASSWORD])

    def _check_new_password(self, password: str) -> None:
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

    def _registration_parts(self) -> tuple[RegistrationStore, Dispatcher, KeyRing]:
        if self._registrations is None or self._dispatcher is None or self._ring is None:
            raise ConfigurationError(
                ["password registration needs a registration store, a dispatcher and hashing keys"]
            )
        return self._registrations, self._dispatcher, self._ring

    def _delivery_failed(self, identity: str) -> FailureCallback:
        async def record(_message: Message, _error: Exception) -> None:
            await self._audit.record(
                strategy=STRATEGY,
                action="deliver",
                success=False,
                now=self._clock.now(),
                identity=identity,
            )

        return record
