"""OTP actions: request a code, sign in with it.

Both actions run the brute-force guard first, so every attempt is counted
before anything is verified, and both answer alike for known and unknown
identities:

- ``request`` always stores a fresh code for the identity (a random one
  nobody receives when the identity is unknown and registration is off), so
  the two paths do the same database work; only the background send differs.
- ``sign_in`` consumes the code in one atomic statement; wrong, expired,
  used and unknown all end in the same :class:`AuthenticationFailedError`.
"""

from __future__ import annotations

from keystile.clock import Clock
from keystile.crypto.keyring import KeyRing
from keystile.errors import AuthenticationFailedError
from keystile.flows.sessions import Authenticated, PendingSession, Sessions
from keystile.senders.base import Message
from keystile.senders.dispatch import Dispatcher, FailureCallback
from keystile.senders.messages import otp_message
from keystile.store.sign_ins import SignInStore
from keystile.store.users import User
from keystile.strategies.attempts import AttemptGate, parse_identity
from keystile.strategies.audit_trail import AuditTrail
from keystile.strategies.otp import core
from keystile.strategies.otp.config import STRATEGY, OtpConfig
from keystile.tokens import AMR_OTP

PURPOSE = "otp"


class OtpService:
    """Passwordless sign-in with short codes (see :class:`OtpConfig` for the options)."""

    def __init__(
        self,
        *,
        config: OtpConfig,
        sign_ins: SignInStore,
        sessions: Sessions,
        audit: AuditTrail,
        dispatcher: Dispatcher,
        hashing_keys: KeyRing,
        clock: Clock,
        service_name: str = "Keystile",
    ) -> None:
        self.config = config
        self._sign_ins = sign_ins
        self._sessions = sessions
        self._audit = audit
        self._dispatcher = dispatcher
        self._ring = hashing_keys
        self._clock = clock
        self._service_name = service_name
        self._gate = AttemptGate(strategy=STRATEGY, guard=config.guard, audit=audit, clock=clock)

    async def request(self, identity: str, *, client_address: str | None = None) -> None:
        """Store a new code for ``identity`` and send it if the identity may sign in.

        Returns nothing either way: the caller answers ``{"status": "ok"}``.

        Raises:
            InvalidRequestError: the identity is malformed.
            TooManyAttemptsError: a brute-force limit holds (same for every identity).
            UnavailableError: the store or the limiter is unreachable.
        """
        normalised = parse_identity(identity)
        deferred = await self._gate.enter(
            "request", normalised, client_address, defer_to=self._sign_ins.db
        )
        now = self._clock.now()
        code = core.new_code(self.config)
        expires_at = now + self.config.lifetime
        subject, deliver = await self._sign_ins.store_code(
            identity=normalised,
            code_id=core.code_token_id(self._ring, normalised, code),
            purpose=PURPOSE,
            now=now,
            expires_at=expires_at,
            audit=self._audit.event(
                strategy=STRATEGY,
                action="request",
                success=False,
                now=now,
                identity=normalised,
                client_address=client_address,
            ),
            deliver_to_unknown=self.config.registration_enabled,
            admit=deferred.admit if deferred is not None else None,
        )
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
            message, on_failure=self._delivery_failed(normalised, subject), discard=not deliver
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

    async def _redeem(
        self,
        identity: str,
        code: str,
        client_address: str | None,
        pending: PendingSession | None,
    ) -> User:
        normalised = parse_identity(identity)
        # A database rate limit on the sign-in store's own database is hit inside
        # the sign-in transaction (one write-lock turn per attempt, not two).
        deferred = await self._gate.enter(
            "sign_in", normalised, client_address, defer_to=self._sign_ins.db
        )
        now = self._clock.now()
        submitted = core.normalize_code(self.config, code[: core.MAX_CODE_INPUT])
        user = await self._sign_ins.redeem_code(
            identity=normalised,
            code_ids=core.candidate_token_ids(self._ring, normalised, submitted),
            purpose=PURPOSE,
            now=now,
            max_failures=self.config.max_attempts_per_code,
            single_use=self.config.single_use,
            register=self.config.registration_enabled,
            session=pending.row if pending else None,
            audit=self._audit.event(
                strategy=STRATEGY,
                action="sign_in",
                success=False,
                now=now,
                identity=normalised,
                client_address=client_address,
            ),
            admit=deferred.admit if deferred is not None else None,
        )
        if user is None:
            raise AuthenticationFailedError()
        return user

    async def verify(self, identity: str, code: str, *, client_address: str | None = None) -> User:
        """The user the code belongs to, after consuming it (no session is started).

        Raises:
            InvalidRequestError: the identity is malformed.
            TooManyAttemptsError: a brute-force limit holds.
            AuthenticationFailedError: wrong, expired, used, burned, or unknown identity.
            UnavailableError: the store or the limiter is unreachable.
        """
        return await self._redeem(identity, code, client_address, None)

    async def sign_in(
        self, identity: str, code: str, *, client_address: str | None = None
    ) -> Authenticated:
        """Verify the code and start a session: one write transaction for both."""
        pending = self._sessions.prepare()
        user = await self._redeem(identity, code, client_address, pending)
        return self._sessions.complete(user, pending, strategies=[STRATEGY], amr=[AMR_OTP])
