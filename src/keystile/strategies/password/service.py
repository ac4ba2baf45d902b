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

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from keystile.clock import Clock
from keystile.crypto.alphabets import UNAMBIGUOUS_UPPERCASE, generate_code
from keystile.crypto.hashing import keyed_hash, keyed_hashes
from keystile.crypto.keyring import KeyRing
from keystile.crypto.passwords import MAX_PASSWORD_LENGTH, PasswordHasher
from keystile.errors import InvalidRequestError
from keystile.senders.base import Message
from keystile.senders.dispatch import Dispatcher, FailureCallback
from keystile.senders.messages import registration_message
from keystile.store import registrations, users
from keystile.store.audit import insert_event
from keystile.store.database import Database
from keystile.store.locks import lock_identity
from keystile.store.prepared import Executor
from keystile.store.users import User
from keystile.strategies.attempts import Admission, AttemptGate, parse_identity
from keystile.strategies.audit_trail import AuditTrail
from keystile.strategies.factors import VerifiedFactor
from keystile.strategies.password.config import PasswordConfig
from keystile.tokens import AMR_PASSWORD

STRATEGY = "password"

#: Confirmation codes: 8 symbols of a 21-letter alphabet (3.8e10 codes), valid 30 minutes.
CONFIRMATION_CODE_LENGTH = 8
CONFIRMATION_LIFETIME = timedelta(minutes=30)
_MAX_CODE_INPUT = 64


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """The verdict of the password hash, applied inside the sign-in's transaction.

    ``user`` is set only when the password matched; ``new_hash`` replaces a
    hash made under older parameters, in the same transaction.
    """

    user: User | None
    new_hash: str | None = field(default=None, repr=False)

    def verify(self, conn: Executor, now: datetime) -> VerifiedFactor | None:
        """The verified factor when the password matched; stores the rehash."""
        if self.user is None:
            return None
        if self.new_hash is not None:
            users.set_password_hash(conn, self.user.id, self.new_hash, now=now)
        return VerifiedFactor(user=self.user, strategy=STRATEGY, amr=AMR_PASSWORD, at=now)


@dataclass(frozen=True, slots=True)
class PasswordClaim:
    """An email and password as submitted; :meth:`prepare` runs Argon2 off the write path."""

    identity: str
    password: str = field(repr=False)
    service: PasswordService = field(repr=False)

    strategy = STRATEGY
    action = "sign_in"
    audit_action = "sign_in"
    costly = True

    async def prepare(self) -> PasswordCheck:
        """Read the user's hash and check the password (a dummy hash for unknown emails)."""
        return await self.service.check_password(self.identity, self.password)


@dataclass(frozen=True, slots=True)
class ConfirmationCheck:
    """A registration's mailed code, consumed inside the sign-in's transaction."""

    identity: str
    code_ids: tuple[str, ...]

    strategy = STRATEGY
    action = "register"
    audit_action = "confirm_registration"
    costly = False

    async def prepare(self) -> ConfirmationCheck:
        """Nothing to do outside the transaction."""
        return self

    def verify(self, conn: Executor, now: datetime) -> VerifiedFactor | None:
        """Use up the pending registration; a new account gets its password at once.

        For an existing account the code proves the address, and the new
        password is handed on (``details["password_hash"]``): the flow gives
        it to the account once the sign-in is complete, after the second
        factor for a user who has one, and ends the account's other sessions.
        """
        password_hash = registrations.consume_pending(
            conn, identity=self.identity, code_ids=self.code_ids, now=now
        )
        if password_hash is None:
            return None
        user = users.find_by_email(conn, self.identity)
        if user is None:
            user = users.insert_user(conn, self.identity, password_hash=password_hash, now=now)
            return VerifiedFactor(user=user, strategy=STRATEGY, amr=AMR_PASSWORD, at=now)
        return VerifiedFactor(
            user=user,
            strategy=STRATEGY,
            amr=AMR_PASSWORD,
            at=now,
            details={"password_hash": password_hash},
        )


class PasswordService:
    """Sign-in and registration with a password."""

    def __init__(
        self,
        *,
        config: PasswordConfig,
        db: Database,
        hasher: PasswordHasher,
        gate: AttemptGate,
        audit: AuditTrail,
        dispatcher: Dispatcher,
        hashing_keys: KeyRing,
        clock: Clock,
        service_name: str = "Keystile",
    ) -> None:
        self.config = config
        self.gate = gate
        self._db = db
        self._hasher = hasher
        self._audit = audit
        self._dispatcher = dispatcher
        self._ring = hashing_keys
        self._clock = clock
        self._service_name = service_name

    def claim(self, email: str, password: str) -> PasswordClaim:
        """Parse a sign-in for the sign-in flow (nothing is checked yet).

        Raises:
            InvalidRequestError: the email is malformed or the password too long.
        """
        normalised = parse_identity(email)
        if len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidRequestError(
                "The password is too long.",
                {"user.password": f"must be at most {MAX_PASSWORD_LENGTH} characters"},
            )
        return PasswordClaim(identity=normalised, password=password, service=self)

    async def check_password(self, identity: str, password: str) -> PasswordCheck:
        """Argon2 against the stored hash, or the dummy: the same work for unknown emails."""
        user = await self._db.query(functools.partial(users.find_by_email, email=identity))
        stored = user.password_hash if user is not None else None
        valid = await self._hasher.verify_or_dummy_async(stored, password)
        if not valid or user is None or stored is None:
            return PasswordCheck(user=None)
        new_hash = None
        if self._hasher.needs_rehash(stored):
            new_hash = await self._hasher.hash_async(password)
        return PasswordCheck(user=user, new_hash=new_hash)

    async def create_user(self, email: str, password: str) -> User:
        """Create a user with a password (administration).

        Raises:
            InvalidRequestError: malformed email or a password that is too short or long.
            AlreadyRegisteredError: the email is taken.
        """
        normalised = parse_identity(email)
        self._check_new_password(password)
        password_hash = await self._hasher.hash_async(password)
        now = self._clock.now()
        return await users.UserStore(self._db).create(
            normalised, password_hash=password_hash, now=now
        )

    async def register(
        self, email: str, password: str, *, client_address: str | None = None
    ) -> None:
        """Keep ``password`` pending and mail a confirmation code to ``email``.

        Answers nothing either way (the route says ``{"status": "ok"}``): the
        same work and answer for a new and an existing address. The password
        works only after the code is confirmed (:meth:`confirmation`).

        Raises:
            InvalidRequestError: malformed email, password too short or long.
            TooManyAttemptsError: the registration limit for this email holds.
        """
        normalised = parse_identity(email)
        self._check_new_password(password)
        now = self._clock.now()
        admission = await self.gate.enter("register", normalised, client_address, now=now)
        admission = await self.gate.peek(admission)  # no hash for a caller locked out already
        password_hash = None
        if admission.open:
            password_hash = await self._hasher.hash_async(password)
        code = generate_code(UNAMBIGUOUS_UPPERCASE, CONFIRMATION_CODE_LENGTH)
        expires_at = now + CONFIRMATION_LIFETIME
        wait = await self._db.transact(
            functools.partial(
                self._keep_pending,
                admission,
                code_id=keyed_hash(self._ring.current, registrations.PURPOSE, normalised, code),
                password_hash=password_hash,
                now=now,
                expires_at=expires_at,
            )
        )
        Admission.settle(wait)
        message = registration_message(
            to=normalised,
            code=code,
            expires_at=expires_at,
            lifetime=CONFIRMATION_LIFETIME,
            service_name=self._service_name,
        )
        self._dispatcher.submit(message, on_failure=self._delivery_failed(normalised))

    def _keep_pending(
        self,
        admission: Admission,
        conn: Executor,
        *,
        code_id: str,
        password_hash: str | None,
        now: datetime,
        expires_at: datetime,
    ) -> int | None:
        identity = admission.attempt.identity
        lock_identity(conn, identity)
        wait = admission.count_in(conn)
        if wait is not None or password_hash is None:
            return wait
        registrations.replace_pending(
            conn,
            identity=identity,
            code_id=code_id,
            password_hash=password_hash,
            now=now,
            expires_at=expires_at,
        )
        insert_event(
            conn,
            self._audit.event(
                strategy=STRATEGY,
                action="register",
                success=True,
                now=now,
                identity=identity,
                client_address=admission.attempt.client_address,
            ),
        )
        return None

    def confirmation(self, email: str, code: str) -> ConfirmationCheck:
        """Parse a registration's mailed code for the sign-in flow.

        Counted against the registration limit; a wrong, expired, used or
        unknown code is one failure.

        Raises:
            InvalidRequestError: the email is malformed.
        """
        normalised = parse_identity(email)
        submitted = code[:_MAX_CODE_INPUT].strip().upper()
        return ConfirmationCheck(
            identity=normalised,
            code_ids=tuple(keyed_hashes(self._ring, registrations.PURPOSE, normalised, submitted)),
        )

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
