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
("second factor needed", a stepped-up session) is a new decision here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from keystile.clock import Clock
from keystile.errors import AuthenticationFailedError
from keystile.flows.sessions import Authenticated, PendingSession, Sessions
from keystile.store.audit import insert_event
from keystile.store.database import Database
from keystile.store.locks import lock_identity
from keystile.store.prepared import Executor
from keystile.store.users import User
from keystile.strategies.attempts import Admission, AttemptGate
from keystile.strategies.audit_trail import AuditTrail
from keystile.strategies.factors import Claim, FactorCheck, VerifiedFactor
from keystile.strategies.otp.service import OtpService
from keystile.strategies.password.service import PasswordService


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """The decision to start a session, with the factors it carries (in order)."""

    strategies: tuple[str, ...]
    amr: tuple[str, ...]


def decide(verified: VerifiedFactor) -> SessionGrant:
    """What a verified first factor earns (pure).

    Today always a session; this is where "second factor needed" goes once
    a user can have one.
    """
    return SessionGrant(strategies=(verified.strategy,), amr=(verified.amr,))


@dataclass(frozen=True, slots=True)
class _Outcome:
    wait: int | None = None
    user: User | None = None
    grant: SessionGrant | None = None


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
    ) -> None:
        self._db = db
        self._sessions = sessions
        self._audit = audit
        self._clock = clock
        self._password = password
        self._otp = otp

    async def password(
        self, email: str, password: str, *, client_address: str | None = None
    ) -> Authenticated:
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
    ) -> Authenticated:
        """Prove the address of a pending registration with its mailed code, and sign in.

        Raises: as :meth:`password` (counted against the registration limit).
        """
        claim = self._password.confirmation(email, code)
        return await self._first_factor(self._password.gate, claim, client_address)

    async def otp(
        self, email: str, code: str, *, client_address: str | None = None
    ) -> Authenticated:
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
    ) -> Authenticated:
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
        if outcome.user is None or outcome.grant is None:
            raise AuthenticationFailedError()
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
        grant = decide(verified) if verified is not None else None
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
        if verified is None:
            return _Outcome()
        self._sessions.store_in(conn, verified.user, pending)
        return _Outcome(user=verified.user, grant=grant)
