"""OTP actions: request a code, and check a submitted one for the sign-in flow.

Both count the attempt before anything is decided and answer alike for known
and unknown identities:

- :meth:`OtpService.request` always stores a fresh code for the identity (a
  random one nobody receives when the identity is unknown and registration
  is off), so the two paths do the same database work; only the background
  send differs. One write transaction: the limiter hit, the old code
  revoked, the new one stored, the audit record.
- :meth:`OtpService.claim` parses a submitted code for
  :class:`keystile.flows.sign_in.SignInFlow`, whose transaction consumes it
  in one atomic statement (:class:`OtpCheck`); wrong, expired, used and
  unknown all end in the same failure.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from keystile.clock import Clock
from keystile.crypto.keyring import KeyRing
from keystile.senders.base import Message
from keystile.senders.dispatch import Dispatcher, FailureCallback
from keystile.senders.messages import otp_message
from keystile.store import tokens, users
from keystile.store.audit import insert_event
from keystile.store.database import Database
from keystile.store.locks import lock_identity
from keystile.store.prepared import Executor
from keystile.strategies.attempts import Admission, AttemptGate, parse_identity
from keystile.strategies.audit_trail import AuditTrail
from keystile.strategies.factors import VerifiedFactor
from keystile.strategies.otp import core
from keystile.strategies.otp.config import STRATEGY, OtpConfig
from keystile.tokens import AMR_OTP

PURPOSE = "otp"


@dataclass(frozen=True, slots=True)
class _Stored:
    """What a code request's transaction found: whom it is for, whether to send, or a wait."""

    subject: str | None
    deliver: bool
    wait: int | None


@dataclass(frozen=True, slots=True)
class OtpCheck:
    """A submitted code, checked inside the sign-in's write transaction.

    Attributes:
        identity: the normalised identity.
        code_ids: the ids the code may be stored under (one per hashing key).
        max_failures: misses after which the identity's live code is burned.
        single_use: whether a hit uses the code up.
        register: whether a correct code for an unknown identity creates the user.
    """

    identity: str
    code_ids: tuple[str, ...]
    max_failures: int
    single_use: bool
    register: bool

    strategy = STRATEGY
    action = "sign_in"
    audit_action = "sign_in"
    costly = False

    async def prepare(self) -> OtpCheck:
        """Nothing to do outside the transaction: the check is one statement in it."""
        return self

    def verify(self, conn: Executor, now: datetime) -> VerifiedFactor | None:
        """Consume the code (or count a miss); the user it signs in, created if allowed."""
        hit = tokens.consume_code(
            conn,
            self.code_ids,
            purpose=PURPOSE,
            subject=self.identity,
            now=now,
            max_failures=self.max_failures,
            single_use=self.single_use,
        )
        if not hit:
            return None
        user = users.find_by_email(conn, self.identity)
        if user is None and self.register:
            user = users.insert_user(conn, self.identity, password_hash=None, now=now)
        if user is None:
            return None
        return VerifiedFactor(user=user, strategy=STRATEGY, amr=AMR_OTP, at=now)


class OtpService:
    """Passwordless sign-in with short codes (see :class:`OtpConfig` for the options)."""

    def __init__(
        self,
        *,
        config: OtpConfig,
        db: Database,
        gate: AttemptGate,
        audit: AuditTrail,
        dispatcher: Dispatcher,
        hashing_keys: KeyRing,
        clock: Clock,
        generator: object | None = None,
        service_name: str = "Keystile",
    ) -> None:
        self.config = config
        self.gate = gate
        self._db = db
        self._audit = audit
        self._dispatcher = dispatcher
        self._ring = hashing_keys
        self._clock = clock
        self._generator = generator
        self._service_name = service_name

    async def request(self, identity: str, *, client_address: str | None = None) -> None:
        """Store a new code for ``identity`` and send it if the identity may sign in.

        Returns nothing either way: the caller answers ``{"status": "ok"}``.

        Raises:
            InvalidRequestError: the identity is malformed.
            TooManyAttemptsError: a brute-force limit holds (same for every identity).
            UnavailableError: the store or the limiter is unreachable.
        """
        normalised = parse_identity(identity)
        now = self._clock.now()
        admission = await self.gate.enter("request", normalised, client_address, now=now)
        code = core.new_code(self.config, self._generator)
        expires_at = now + self.config.lifetime
        stored = await self._db.transact(
            functools.partial(
                self._store_code,
                admission,
                code_id=core.code_token_id(self._ring, normalised, code),
                now=now,
                expires_at=expires_at,
            )
        )
        Admission.settle(stored.wait)
        # Built and submitted either way (discarded when not delivered): the
        # answer's timing must not tell a known identity from an unknown one.
        message = otp_message(
            to=normalised,
            code=code,
            expires_at=expires_at,
            lifetime=self.config.lifetime,
            service_name=self._service_name,
        )
        self._dispatcher.submit(
            message,
            on_failure=self._delivery_failed(normalised, stored.subject),
            discard=not stored.deliver,
        )

    def _store_code(
        self,
        admission: Admission,
        conn: Executor,
        *,
        code_id: str,
        now: datetime,
        expires_at: datetime,
    ) -> _Stored:
        """One transaction: count, replace the identity's code, audit.

        The identity's writes take turns (:func:`lock_identity`), so however
        many requests run at once exactly one live code remains. Only the
        user's id is read, so a known identity costs what an unknown one does.
        """
        identity = admission.attempt.identity
        lock_identity(conn, identity)
        wait = admission.count_in(conn)
        if wait is not None:
            return _Stored(subject=None, deliver=False, wait=wait)
        subject = users.find_subject_by_email(conn, identity)
        tokens.replace_code(
            conn, jti=code_id, purpose=PURPOSE, subject=identity, now=now, expires_at=expires_at
        )
        deliver = subject is not None or self.config.registration_enabled
        event = self._audit.event(
            strategy=STRATEGY,
            action="request",
            success=deliver,
            now=now,
            identity=identity,
            subject=subject,
            client_address=admission.attempt.client_address,
        )
        insert_event(conn, event)
        return _Stored(subject=subject, deliver=deliver, wait=None)

    def claim(self, identity: str, code: str) -> OtpCheck:
        """Parse a submitted code for the sign-in flow (nothing is checked yet).

        Raises:
            InvalidRequestError: the identity is malformed.
        """
        normalised = parse_identity(identity)
        submitted = core.normalize_code(self.config, code[: core.MAX_CODE_INPUT], self._generator)
        return OtpCheck(
            identity=normalised,
            code_ids=tuple(core.candidate_token_ids(self._ring, normalised, submitted)),
            max_failures=self.config.max_attempts_per_code,
            single_use=self.config.single_use,
            register=self.config.registration_enabled,
        )

    def _delivery_failed(self, identity: str, subject: str | None) -> FailureCallback:
        async def record(_message: Message, _error: Exception) -> None:
            await self._audit.record(
                strategy=STRATEGY,
                action="deliver",
                success=False,
                now=self._clock.now(),
                identity=identity,
                subject=subject,
            )

        return record
