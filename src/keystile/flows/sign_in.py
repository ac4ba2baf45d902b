"""The sign-in flow: a first factor in, what the caller gets out, in one transaction.

Every sign-in has the same shape, whichever strategy proves the factor:

1. the strategy's service parses the credentials into a
   :class:`~keystile.strategies.factors.Claim`;
2. the strategy's :class:`~keystile.strategies.attempts.AttemptGate` counts
   the attempt where it cannot be counted in the database;
3. the claim does its costly work off the write path (a password hash);
4. one write transaction (:meth:`~keystile.store.database.Database.transact`):
   the identity's lock, the in-database limits, the factor's check
   (consuming a code atomically), the decision (:func:`decide`), the new
   session's row and the audit record;
5. after the commit, a refusal or failure is raised, or the token signed.

So a new strategy plugs in by providing a claim, and a new kind of answer
is a new decision here. A user with a second factor gets no session from a
first factor: :func:`decide` answers "second factor needed", the transaction
stores an MFA token (:mod:`keystile.flows.mfa_tokens`) instead of a session
row, and :meth:`SignInFlow.totp` finishes the sign-in with it. The same
check, with a bearer session instead, is a step-up (:meth:`SignInFlow.step_up_totp`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from keystile.clock import Clock
from keystile.errors import AuthenticationFailedError
from keystile.flows.enrolment import EnrolmentFlow
from keystile.flows.mfa_tokens import PURPOSE as MFA_PURPOSE
from keystile.flows.mfa_tokens import MfaTokens, PendingSignIn
from keystile.flows.notices import Notices
from keystile.flows.sessions import Authenticated, PendingSession, Session, Sessions
from keystile.limits.protection import Attempt
from keystile.store import recovery_codes, tokens, users
from keystile.store import totp as authenticators
from keystile.store.audit import insert_event
from keystile.store.database import Database
from keystile.store.locks import lock_identity
from keystile.store.prepared import Executor
from keystile.store.users import User
from keystile.strategies.attempts import Admission, AttemptGate
from keystile.strategies.audit_trail import AuditTrail
from keystile.strategies.factors import Claim, FactorCheck, SecondFactorCheck, VerifiedFactor
from keystile.strategies.otp.service import OtpService
from keystile.strategies.password.service import PasswordService
from keystile.strategies.recovery_code.service import PreparedBatch, RecoveryCodeService
from keystile.strategies.totp.enrolment import (
    Enabled,
    PendingConfirmation,
    TotpEnrolment,
    TotpSetup,
)
from keystile.strategies.totp.service import TotpService
from keystile.tokens import AMR_MFA, AMR_OTP

MfaPolicy = Literal["optional", "required"]


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """The decision to start a session, with the factors it carries (in order)."""

    strategies: tuple[str, ...]
    amr: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SecondFactorNeeded:
    """The decision to hold the sign-in until a second factor: ``methods`` may finish it."""

    first: SessionGrant
    methods: tuple[str, ...]


def decide(
    verified: VerifiedFactor,
    *,
    second_factors: Sequence[str] = (),
    policy: MfaPolicy = "optional",
) -> SessionGrant | SecondFactorNeeded:
    """What a verified first factor earns (pure).

    A user with a second factor (``second_factors``: the methods they have)
    must pass one before any session exists. Under the ``required`` policy a
    user without one must enrol first (method ``totp_setup``). Otherwise, a
    session naming the factor.
    """
    grant = SessionGrant(strategies=(verified.strategy,), amr=(verified.amr,))
    if second_factors:
        return SecondFactorNeeded(first=grant, methods=tuple(second_factors))
    if policy == "required":
        return SecondFactorNeeded(first=grant, methods=("totp_setup",))
    return grant


def add_factor(grant: SessionGrant, verified: VerifiedFactor) -> SessionGrant:
    """The grant of a session that also passed ``verified`` as a second factor (pure).

    Strategies keep their order without repeats; ``amr`` gains the factor's
    value and ``mfa`` (RFC 8176: more than one factor was used).
    """
    strategies = tuple(dict.fromkeys((*grant.strategies, verified.strategy)))
    amr = tuple(dict.fromkeys((*grant.amr, verified.amr, AMR_MFA)))
    return SessionGrant(strategies=strategies, amr=amr)


@dataclass(frozen=True, slots=True)
class SecondFactorRequired:
    """The answer to a first factor that passed for a user who owes a second one."""

    mfa_token: str = field(repr=False)
    expires_in: int
    methods: tuple[str, ...]


SignInResult = Authenticated | SecondFactorRequired


@dataclass(frozen=True, slots=True)
class _Outcome:
    wait: int | None = None
    user: User | None = None
    grant: SessionGrant | None = None
    challenge: SecondFactorRequired | None = None
    #: The user's other sessions were ended (a password change): forget them here too.
    signed_out: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


def _session(result: SignInResult) -> Authenticated:
    """A second step's session (only a reset under the required policy holds a sign-in)."""
    if not isinstance(result, Authenticated):
        raise RuntimeError("a second factor's check answered a challenge")
    return result


class SignInFlow:
    """Sign-ins by every first-factor strategy, through one path."""

    def __init__(
        self,
        *,
        db: Database,
        sessions: Sessions,
        audit: AuditTrail,
        clock: Clock,
        password: PasswordService,
        otp: OtpService | None,
        totp: TotpService | None = None,
        recovery: RecoveryCodeService | None = None,
        totp_enrolment: TotpEnrolment | None = None,
        enrolment: EnrolmentFlow | None = None,
        mfa_tokens: MfaTokens,
        policy: MfaPolicy = "optional",
        notices: Notices | None = None,
    ) -> None:
        self._db = db
        self._sessions = sessions
        self._audit = audit
        self._clock = clock
        self._password = password
        self._otp = otp
        self._totp = totp
        self._recovery = recovery
        self._totp_enrolment = totp_enrolment
        self._enrolment = enrolment
        self._mfa = mfa_tokens
        self._policy: MfaPolicy = policy
        self._notices = notices

    async def password(
        self, email: str, password: str, *, client_address: str | None = None
    ) -> SignInResult:
        """Sign in with email and password.

        Raises:
            InvalidRequestError: malformed email or an over-long password.
            TooManyAttemptsError: a brute-force limit holds for this email or address.
            AuthenticationFailedError: unknown email or wrong password, indistinguishably.
            UnavailableError: the store or the limiter is unreachable.
        """
        claim = self._password.claim(email, password)
        return await self._first_factor(self._password.gate, claim, client_address)

    async def confirm_registration(
        self, email: str, code: str, *, client_address: str | None = None
    ) -> SignInResult:
        """Prove the address of a pending registration with its mailed code, and sign in.

        Raises: as :meth:`password` (counted against the registration limit).
        """
        claim = self._password.confirmation(email, code)
        return await self._first_factor(self._password.gate, claim, client_address)

    async def otp(
        self, email: str, code: str, *, client_address: str | None = None
    ) -> SignInResult:
        """Sign in with an emailed one-time code.

        Raises:
            InvalidRequestError: the email is malformed.
            TooManyAttemptsError: a brute-force limit holds.
            AuthenticationFailedError: wrong, expired, used, burned, or unknown identity.
            UnavailableError: the store or the limiter is unreachable.
            LookupError: the OTP strategy is turned off.
        """
        if self._otp is None:
            raise LookupError("the otp strategy is not enabled")
        claim = self._otp.claim(email, code)
        return await self._first_factor(self._otp.gate, claim, client_address)

    async def _first_factor(
        self, gate: AttemptGate, claim: Claim, client_address: str | None
    ) -> SignInResult:
        now = self._clock.now()
        admission = await gate.enter(claim.action, claim.identity, client_address, now=now)
        if claim.costly:
            admission = await gate.peek(admission)
        check = await claim.prepare() if admission.open else None
        pending = self._sessions.prepare()
        outcome = await self._db.transact(
            functools.partial(self._record, admission, claim, check, pending),
            # Concurrent first sign-ins of one new identity (registration on, a
            # reusable code, PostgreSQL) can each insert the user: the losers
            # run once more and find the winner's.
            retry_on_conflict=True,
        )
        Admission.settle(outcome.wait)
        if outcome.challenge is not None:
            return outcome.challenge
        if outcome.user is None or outcome.grant is None:
            raise AuthenticationFailedError()
        if outcome.signed_out:
            self._sessions.forget_user(outcome.user.subject)
        return self._sessions.complete(
            outcome.user, pending, strategies=outcome.grant.strategies, amr=outcome.grant.amr
        )

    def _record(
        self,
        admission: Admission,
        claim: Claim,
        check: FactorCheck | None,
        pending: PendingSession,
        conn: Executor,
    ) -> _Outcome:
        """The attempt's one transaction (see the module docstring, step 4)."""
        attempt = admission.attempt
        lock_identity(conn, attempt.identity)
        wait = admission.count_in(conn)
        if wait is not None or check is None:
            return _Outcome(wait=wait)
        verified = check.verify(conn, attempt.now)
        decision = (
            decide(
                verified,
                second_factors=self._second_factors(conn, verified.user),
                policy=self._policy,
            )
            if verified is not None
            else None
        )
        insert_event(
            conn,
            self._audit.event(
                strategy=claim.strategy,
                action=claim.audit_action,
                success=verified is not None,
                now=attempt.now,
                identity=attempt.identity,
                subject=verified.user.subject if verified is not None else None,
                client_address=attempt.client_address,
            ),
        )
        if verified is None or decision is None:
            return _Outcome()
        new_password = verified.details.get("password_hash")
        new_password = new_password if isinstance(new_password, str) else None
        if isinstance(decision, SecondFactorNeeded):
            issued = self._mfa.issue_in(
                conn,
                user_id=verified.user.id,
                strategies=decision.first.strategies,
                amr=decision.first.amr,
                methods=decision.methods,
                now=attempt.now,
                password_hash=new_password,
            )
            challenge = SecondFactorRequired(
                mfa_token=issued.token, expires_in=issued.expires_in, methods=decision.methods
            )
            return _Outcome(user=verified.user, challenge=challenge)
        signed_out = self._change_password(conn, verified.user, new_password, attempt.now)
        self._sessions.store_in(conn, verified.user, pending)
        return _Outcome(user=verified.user, grant=decision, signed_out=signed_out)

    @staticmethod
    def _change_password(
        conn: Executor, user: User, password_hash: str | None, now: datetime
    ) -> bool:
        """Give the account a new password, ending its other sessions; whether it did.

        Called once the sign-in that proved the right to it is complete, before
        the new session's row is stored (so that session is not among those ended).
        """
        if password_hash is None:
            return False
        users.set_password_hash(conn, user.id, password_hash, now=now)
        tokens.revoke_live(conn, subject=user.subject, purpose="access", now=now)
        return True

    def _second_factors(self, conn: Executor, user: User) -> tuple[str, ...]:
        """The second-factor methods ``user`` has (read in the sign-in's transaction).

        Recovery codes stand in for the authenticator: they are offered only
        beside an active one (a reset removes both). A stored authenticator
        holds the sign-in even while TOTP is turned off (fails closed: the
        user must finish with a recovery code, or not at all); turning the
        strategy off never turns anyone's second factor off.
        """
        if authenticators.get_active(conn, user.id) is None:
            return ()
        if self._recovery is not None and recovery_codes.has_unused(conn, user.id):
            return ("totp", "recovery_code")
        return ("totp",)

    # The second step, and step-up.

    async def totp(
        self, mfa_token: str, code: str, *, client_address: str | None = None
    ) -> Authenticated:
        """Finish a sign-in held for a second factor with a TOTP code.

        Raises:
            AuthenticationFailedError: an unknown, used, burned or expired MFA token, or a
                wrong, replayed or malformed code (the token's failures are counted).
            TooManyAttemptsError: the user's TOTP limit holds.
            UnavailableError: the store or the limiter is unreachable.
            LookupError: the TOTP strategy is turned off.
        """
        service = self._totp_service()
        result = await self._second_step(
            service.gate, "totp", service.claim(code), mfa_token, client_address
        )
        return _session(result)

    async def recovery_code(
        self,
        mfa_token: str,
        code: str,
        *,
        rotate: bool | None = None,
        client_address: str | None = None,
    ) -> Authenticated:
        """Finish a sign-in held for a second factor with a recovery code.

        The answer's details carry ``recovery_code_used_at``,
        ``recovery_codes_remaining`` and, when rotating (``rotate``, or the
        ``rotate_on_use`` mode), the new ``recovery_code``.

        Raises:
            InvalidRequestError: the input cannot be a recovery code (nothing counted).
            AuthenticationFailedError, TooManyAttemptsError, UnavailableError: as :meth:`totp`.
            LookupError: recovery codes are turned off.
        """
        service = self._recovery_service()
        check = service.claim(code, rotate=rotate)
        result = await self._second_step(
            service.gate, "recovery_code", check, mfa_token, client_address
        )
        return _session(result)

    async def reset_mfa(
        self, mfa_token: str, code: str, *, client_address: str | None = None
    ) -> SignInResult:
        """Finish a sign-in with a recovery code and remove the second factor.

        The authenticator and the remaining recovery codes are deleted and the
        user's other sessions revoked (and its other held sign-ins), in the same
        transaction; the new session carries the first factor only, and the
        user may enrol again. Under the ``required`` policy there is no session
        with one factor: the answer holds the sign-in for enrolment instead
        (``SecondFactorRequired`` with method ``totp_setup``).

        Raises: as :meth:`recovery_code`.
        """
        service = self._recovery_service()
        return await self._second_step(
            service.gate,
            "recovery_code",
            service.claim(code, rotate=False),
            mfa_token,
            client_address,
            reset=True,
        )

    async def step_up_totp(
        self, session: Session, code: str, *, client_address: str | None = None
    ) -> Authenticated:
        """Re-verify a signed-in user with a TOTP code: a fresh session whose
        ``auth_time`` is now, with the factor added; the old token is revoked.

        Raises: as :meth:`totp` (without the MFA token).
        """
        service = self._totp_service()
        return await self._step_up(service.gate, service.claim(code), session, client_address)

    async def step_up_recovery_code(
        self, session: Session, code: str, *, client_address: str | None = None
    ) -> Authenticated:
        """Re-verify a signed-in user with a recovery code (see :meth:`step_up_totp`).

        Raises: as :meth:`recovery_code` (without the MFA token).
        """
        service = self._recovery_service()
        return await self._step_up(service.gate, service.claim(code), session, client_address)

    # Enrolling before any session exists (the `required` MFA policy).

    async def start_enrolment(
        self, mfa_token: str, *, client_address: str | None = None
    ) -> TotpSetup:
        """Start a TOTP setup for the user of an MFA token held for enrolment.

        Raises:
            AuthenticationFailedError: an unknown, used, burned or expired MFA
                token, or one that does not ask for enrolment (``totp_setup``).
            LookupError: TOTP is turned off.
        """
        enrolment = self._enrolment_parts()[0]
        user, _pending = await self._enrolling_user(mfa_token)
        return await enrolment.setup(
            user, second_factor_recent=False, client_address=client_address
        )

    async def finish_enrolment(
        self, mfa_token: str, setup_token: str, code: str, *, client_address: str | None = None
    ) -> Authenticated:
        """Confirm the setup with a code and finish the sign-in held for enrolment.

        One transaction: the confirmation (counted against the user's TOTP
        limit; a first enrolment's recovery codes stored), the MFA token used
        up (or its failure counted) and the session, which carries both
        factors. The answer's details hold the ``recovery_codes`` to show once.

        Raises:
            AuthenticationFailedError: the MFA token as in :meth:`start_enrolment`,
                or a wrong code or setup token.
            TooManyAttemptsError: the user's TOTP limit holds.
        """
        enrolment, flow = self._enrolment_parts()
        user, _pending = await self._enrolling_user(mfa_token)
        confirmation = await enrolment.begin_confirmation(
            user, setup_token, client_address=client_address
        )
        batch = await flow.prepare_batch(user)
        session = self._sessions.prepare()
        outcome = await self._db.transact(
            functools.partial(
                self._record_enrolment, flow, confirmation, code, batch, mfa_token, session
            )
        )
        result = self._finish(outcome, session, confirmation.admission.attempt.now)
        enabled = outcome.details.get("enabled")
        if isinstance(enabled, Enabled):
            flow.notify_enabled(user, enabled)
        return result

    def _enrolment_parts(self) -> tuple[TotpEnrolment, EnrolmentFlow]:
        if self._totp_enrolment is None or self._enrolment is None:
            raise LookupError("the totp strategy is not enabled")
        return self._totp_enrolment, self._enrolment

    async def _enrolling_user(self, mfa_token: str) -> tuple[User, PendingSignIn]:
        now = self._clock.now()
        pending = await self._db.query(
            functools.partial(self._mfa.find_in, token=mfa_token, now=now)
        )
        if pending is None or "totp_setup" not in pending.methods:
            raise AuthenticationFailedError()
        user = await self._db.query(functools.partial(users.find_by_id, user_id=pending.user_id))
        if user is None:
            raise AuthenticationFailedError()
        return user, pending

    def _record_enrolment(
        self,
        flow: EnrolmentFlow,
        confirmation: PendingConfirmation,
        code: str,
        batch: PreparedBatch | None,
        mfa_token: str,
        session: PendingSession,
        conn: Executor,
    ) -> _Outcome:
        confirmed = flow.confirm_in(conn, pending=confirmation, code=code, batch=batch)
        if confirmed.wait is not None:
            return _Outcome(wait=confirmed.wait)
        now = confirmation.admission.attempt.now
        pending = self._mfa.find_in(conn, mfa_token, now=now)
        if pending is None or pending.user_id != confirmation.user.id:
            # The MFA token died meanwhile: the confirmation stands, the sign-in does not.
            return _Outcome()
        if confirmed.enabled is None:
            self._mfa.fail_in(conn, pending, now=now)
            return _Outcome()
        if not self._mfa.use_in(conn, pending, now=now):
            raise RuntimeError("an MFA token found under the user's lock could not be used")
        verified = VerifiedFactor(user=confirmation.user, strategy="totp", amr=AMR_OTP, at=now)
        grant = add_factor(SessionGrant(pending.strategies, pending.amr), verified)
        self._sessions.store_in(conn, confirmation.user, session)
        details = {
            "enabled": confirmed.enabled,
            "recovery_codes": confirmed.enabled.recovery_codes,
        }
        return _Outcome(user=confirmation.user, grant=grant, details=details)

    def _totp_service(self) -> TotpService:
        if self._totp is None:
            raise LookupError("the totp strategy is not enabled")
        return self._totp

    def _recovery_service(self) -> RecoveryCodeService:
        if self._recovery is None:
            raise LookupError("recovery codes are not enabled")
        return self._recovery

    async def _second_step(
        self,
        gate: AttemptGate,
        method: str,
        check: SecondFactorCheck,
        mfa_token: str,
        client_address: str | None,
        *,
        reset: bool = False,
    ) -> SignInResult:
        now = self._clock.now()
        pending = await self._db.query(
            functools.partial(self._mfa.find_in, token=mfa_token, now=now)
        )
        if pending is None or method not in pending.methods:
            raise AuthenticationFailedError()
        admission = await gate.enter("verify", str(pending.user_id), client_address, now=now)
        if admission.open:
            check = await check.prepare(pending.user_id)
        session = self._sessions.prepare()
        try:
            outcome = await self._db.transact(
                functools.partial(self._record_second, admission, check, mfa_token, session, reset)
            )
        finally:
            if reset and pending is not None:  # its other sessions were revoked: here at once
                self._sessions.forget_user(str(pending.user_id))
        if outcome.challenge is not None and outcome.user is not None:
            # Reset under the required policy: the user enrols again before any session.
            if self._notices is not None:
                self._notices.mfa_reset_with_recovery_code(outcome.user)
            return outcome.challenge
        result = self._finish(outcome, session, now)
        if outcome.signed_out:
            self._sessions.forget_user(result.user.subject)
        self._notify(check.strategy, result, reset=reset)
        return result

    async def _step_up(
        self,
        gate: AttemptGate,
        check: SecondFactorCheck,
        session: Session,
        client_address: str | None,
    ) -> Authenticated:
        now = self._clock.now()
        admission = await gate.enter("verify", str(session.user.id), client_address, now=now)
        if admission.open:
            check = await check.prepare(session.user.id)
        fresh = self._sessions.prepare()
        try:
            outcome = await self._db.transact(
                functools.partial(self._record_step_up, admission, check, session, fresh)
            )
        finally:  # the old token is revoked by the step-up: refused here at once
            self._sessions.forget(session.claims.jti)
        result = self._finish(outcome, fresh, now)
        self._notify(check.strategy, result, reset=False)
        return result

    def _notify(self, strategy: str, result: Authenticated, *, reset: bool) -> None:
        """After the commit: tell the user a recovery code was used (or reset their MFA)."""
        if self._notices is None or strategy != "recovery_code":
            return
        if reset:
            self._notices.mfa_reset_with_recovery_code(result.user)
            return
        remaining = result.details.get("recovery_codes_remaining")
        count = remaining if isinstance(remaining, int) else 0
        self._notices.recovery_code_used(result.user, count)

    def _finish(self, outcome: _Outcome, session: PendingSession, now: datetime) -> Authenticated:
        Admission.settle(outcome.wait)
        if outcome.user is None or outcome.grant is None:
            raise AuthenticationFailedError()
        used = outcome.details.get("recovery_code_used_at")
        extra = dict(outcome.extra)
        if isinstance(used, datetime):
            extra["recovery_code_used_at"] = used.isoformat()
        return self._sessions.complete(
            outcome.user,
            session,
            strategies=outcome.grant.strategies,
            amr=outcome.grant.amr,
            auth_time=now,
            extra=extra,
            details=outcome.details,
        )

    def _record_second(
        self,
        admission: Admission,
        check: SecondFactorCheck,
        mfa_token: str,
        session: PendingSession,
        reset: bool,
        conn: Executor,
    ) -> _Outcome:
        """The second step's one transaction: count, check, use the token, start the session."""
        attempt = admission.attempt
        lock_identity(conn, attempt.identity)
        wait = admission.count_in(conn)
        if wait is not None:
            return _Outcome(wait=wait)
        # Looked up again under the lock: a parallel attempt may have used or burned it.
        pending = self._mfa.find_in(conn, mfa_token, now=attempt.now)
        user = users.find_by_id(conn, pending.user_id) if pending is not None else None
        verified = check.verify(conn, user, attempt.now) if user is not None else None
        action = "reset_mfa" if reset else "verify"
        self._audit_second(conn, check.strategy, action, attempt, user, verified)
        if pending is None or user is None:
            return _Outcome()
        if verified is None:
            self._mfa.fail_in(conn, pending, now=attempt.now)
            return _Outcome()
        if not self._mfa.use_in(conn, pending, now=attempt.now):
            raise RuntimeError("an MFA token found under the user's lock could not be used")
        first = SessionGrant(pending.strategies, pending.amr)
        if reset:
            # The second factor goes; so do the user's other sessions. One factor remains.
            authenticators.delete_for_user(conn, user.id)
            recovery_codes.delete_for_user(conn, user.id)
            tokens.revoke_live(conn, subject=user.subject, purpose="access", now=attempt.now)
            # Sign-ins held for the removed factor must not be finished by a new one.
            tokens.revoke_live(conn, subject=user.subject, purpose=MFA_PURPOSE, now=attempt.now)
            if self._policy == "required":
                # No session with one factor where every session needs two: the sign-in
                # is held for enrolment, as a first sign-in without a second factor is.
                issued = self._mfa.issue_in(
                    conn,
                    user_id=user.id,
                    strategies=first.strategies,
                    amr=first.amr,
                    methods=("totp_setup",),
                    now=attempt.now,
                )
                challenge = SecondFactorRequired(
                    mfa_token=issued.token, expires_in=issued.expires_in, methods=("totp_setup",)
                )
                return _Outcome(user=user, challenge=challenge)
            self._sessions.store_in(conn, user, session)
            return _Outcome(user=user, grant=first)
        signed_out = self._change_password(conn, user, pending.password_hash, attempt.now)
        self._sessions.store_in(conn, user, session)
        return _Outcome(
            user=user,
            grant=add_factor(first, verified),
            details=verified.details,
            signed_out=signed_out,
        )

    def _record_step_up(
        self,
        admission: Admission,
        check: SecondFactorCheck,
        current: Session,
        fresh: PendingSession,
        conn: Executor,
    ) -> _Outcome:
        """Step-up's one transaction: count, check, revoke the old token, start the new one."""
        attempt = admission.attempt
        lock_identity(conn, attempt.identity)
        wait = admission.count_in(conn)
        if wait is not None:
            return _Outcome(wait=wait)
        verified = check.verify(conn, current.user, attempt.now)
        self._audit_second(conn, check.strategy, "step_up", attempt, current.user, verified)
        if verified is None:
            return _Outcome()
        if not tokens.revoke_token(conn, jti=current.claims.jti, now=attempt.now):
            return _Outcome()  # signed out (or stepped up) meanwhile: nothing to step up
        grant = add_factor(SessionGrant(current.claims.strategies, current.claims.amr), verified)
        self._sessions.store_in(conn, current.user, fresh)
        return _Outcome(
            user=current.user, grant=grant, details=verified.details, extra=current.claims.extra
        )

    def _audit_second(
        self,
        conn: Executor,
        strategy: str,
        action: str,
        attempt: Attempt,
        user: User | None,
        verified: VerifiedFactor | None,
    ) -> None:
        insert_event(
            conn,
            self._audit.event(
                strategy=strategy,
                action=action,
                success=verified is not None,
                now=attempt.now,
                # A second factor's attempts are keyed by the user id (the MFA token
                # names no email), so its failure limits find them under that key.
                identity=attempt.identity,
                subject=user.subject if user is not None else attempt.identity,
                client_address=attempt.client_address,
            ),
        )
