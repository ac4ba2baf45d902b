"""Second-factor administration: what an operator sees of a user's MFA, and the reset.

For ``keystile user mfa status|reset EMAIL``. A reset is what a help desk
does for a user who lost both their authenticator and their recovery codes:
in one write transaction it removes every TOTP authenticator of the user
(active and pending), every recovery code, revokes every live session
(access token) and writes the audit record; after the commit the user is
told through the sender, with no secret in the message. The user then signs
in with the first factor alone and enrols again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from keystile.clock import Clock
from keystile.flows.mfa_tokens import PURPOSE as MFA_PURPOSE
from keystile.senders.base import Message
from keystile.senders.dispatch import Dispatcher, FailureCallback
from keystile.senders.messages import mfa_reset_message
from keystile.store import recovery_codes, tokens, totp
from keystile.store.audit import insert_event
from keystile.store.database import Database
from keystile.store.prepared import Executor
from keystile.store.recovery_codes import RecoveryCodeStatus
from keystile.store.users import User
from keystile.strategies.audit_trail import AuditTrail
from keystile.strategies.totp.config import STRATEGY
from keystile.tokens import PURPOSE_ACCESS

#: The audit action of a reset (strategy ``totp``).
RESET_ACTION = "mfa_reset"
#: The audit action of a notice that could not be delivered.
DELIVER_ACTION = "deliver"


@dataclass(frozen=True, slots=True)
class MfaStatus:
    """A user's second factors as an operator sees them (never a secret).

    Attributes:
        totp_since: when the active authenticator was confirmed; ``None``
            when TOTP is not active (a pending setup does not count).
        recovery_codes: the user's batch, or ``None`` when they hold no codes at all.
    """

    totp_since: datetime | None
    recovery_codes: RecoveryCodeStatus | None

    @property
    def totp_active(self) -> bool:
        """Whether the user has a confirmed TOTP authenticator."""
        return self.totp_since is not None


@dataclass(frozen=True, slots=True)
class MfaReset:
    """What a reset removed: authenticators (active and pending), recovery codes
    and live sessions, and when."""

    authenticators: int
    recovery_codes: int
    sessions: int
    reset_at: datetime


def read_status(conn: Executor, user: User) -> MfaStatus:
    """The user's TOTP and recovery-code state, read in the caller's transaction."""
    active = totp.get_active(conn, user.id)
    batch = recovery_codes.status(conn, user.id)
    return MfaStatus(
        totp_since=active.confirmed_at if active is not None else None,
        recovery_codes=batch if batch.total > 0 else None,
    )


async def status(db: Database, user: User) -> MfaStatus:
    """The user's second factors (one read)."""
    return await db.query(functools.partial(read_status, user=user))


def _reset_in(conn: Executor, *, user: User, audit: AuditTrail, now: datetime) -> MfaReset:
    """The reset's one transaction: remove the factors, revoke the sessions, audit."""
    removed_totp = totp.delete_for_user(conn, user.id)
    removed_codes = recovery_codes.delete_for_user(conn, user.id)
    revoked = tokens.revoke_live(conn, subject=user.subject, purpose=PURPOSE_ACCESS, now=now)
    # A sign-in held for a second factor must not be finished by a factor just removed.
    tokens.revoke_live(conn, subject=user.subject, purpose=MFA_PURPOSE, now=now)
    event = audit.event(
        strategy=STRATEGY,
        action=RESET_ACTION,
        success=True,
        now=now,
        identity=user.email,
        subject=user.subject,
    )
    insert_event(conn, event)
    return MfaReset(
        authenticators=removed_totp, recovery_codes=removed_codes, sessions=revoked, reset_at=now
    )


async def reset(
    db: Database,
    audit: AuditTrail,
    dispatcher: Dispatcher,
    clock: Clock,
    *,
    user: User,
    service_name: str,
) -> MfaReset:
    """Remove the user's second factor and sign them out everywhere, then notify them.

    Safe to repeat: a user with nothing to remove is still signed out,
    audited and told. The notice is sent in the background (the caller
    drains the dispatcher before exiting); a failed delivery is logged and
    audited (``totp``/``deliver``), never raised.

    Raises:
        UnavailableError: the database cannot be reached (nothing changed).
    """
    now = clock.now()
    done = await db.transact(functools.partial(_reset_in, user=user, audit=audit, now=now))
    message = mfa_reset_message(to=user.email, reset_at=now, service_name=service_name)
    dispatcher.submit(message, on_failure=_delivery_failed(audit, clock, user))
    return done


def _delivery_failed(audit: AuditTrail, clock: Clock, user: User) -> FailureCallback:
    async def record(_message: Message, _error: Exception) -> None:
        await audit.record(
            strategy=STRATEGY,
            action=DELIVER_ACTION,
            success=False,
            now=clock.now(),
            identity=user.email,
            subject=user.subject,
        )

    return record
