"""TOTP enrolment: set up an authenticator app, confirm it with a code, turn it off.

Two phases (issue 9, item 3), so a secret becomes a second factor only once
the user has shown that their app makes its codes:

1. :meth:`TotpEnrolment.setup` draws a secret, stores it sealed
   (``keystile.strategies.totp.sealing``) as a *pending* authenticator, and
   hands out a setup token: opaque, stored only as a keyed hash, bound to
   the user, short-lived and single use. A user whose authenticator is active
   may set up a new one only with a recent second factor (else
   :class:`~keystile.errors.AlreadyEnrolledError`), and the old one stays
   the second factor until the new one is confirmed.
2. :meth:`TotpEnrolment.confirm_setup` checks a code of the pending secret
   in one write transaction: the user's lock, the attempt counted, the token
   found, the code verified, the token used up and the authenticator
   activated (both conditional updates checked by row count; activation
   records the code's time step, so the code cannot be used again to verify),
   the audit record. A wrong code is a counted, audited failure and leaves
   the token usable until it expires, so the user can try again.

:meth:`TotpEnrolment.disable` removes the authenticator, given a recent
second factor. The user is told of every change through the sender, never
with a secret or a code.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from keystile.clock import Clock
from keystile.crypto.hashing import keyed_hash, keyed_hashes
from keystile.crypto.keyring import KeyRing
from keystile.crypto.sealing import UnsealError
from keystile.errors import (
    AlreadyEnrolledError,
    InsufficientAuthenticationError,
)
from keystile.senders.base import Message
from keystile.senders.dispatch import Dispatcher, FailureCallback
from keystile.senders.messages import totp_disabled_message, totp_enabled_message
from keystile.store import recovery_codes, tokens
from keystile.store import totp as store
from keystile.store.audit import AuditEvent, insert_event
from keystile.store.database import Database
from keystile.store.locks import lock_identity
from keystile.store.prepared import Executor
from keystile.store.users import User
from keystile.strategies.attempts import Admission, AttemptGate
from keystile.strategies.audit_trail import AuditTrail
from keystile.strategies.totp import core
from keystile.strategies.totp.config import STRATEGY, TotpConfig
from keystile.strategies.totp.qr import qr_svg
from keystile.strategies.totp.rfc6238 import ALGORITHMS
from keystile.strategies.totp.sealing import seal_secret, unseal_secret
from keystile.strategies.totp.uri import base32_secret, key_uri
from keystile.tokens import AMR_MFA, TokenClaims

logger = logging.getLogger("keystile.totp")

PURPOSE = "totp_setup"
"""The token purpose of setup tokens."""

RECENT_SECOND_FACTOR = timedelta(minutes=5)
"""How recent a second factor must be to replace or remove an authenticator (issue 9)."""

SETUP_TOKEN_BYTES = 32
"""Random bytes of a setup token (256 bits: found by hash, so no guessing limit protects it)."""

MAX_TOKEN_INPUT = 128
"""Longer submitted setup tokens are cut before hashing (a real one is 43 characters)."""


def second_factor_recent(
    claims: TokenClaims, *, now: datetime, max_age: timedelta = RECENT_SECOND_FACTOR
) -> bool:
    """Whether the session passed a second factor (``mfa`` in its ``amr``, RFC 8176)
    no longer than ``max_age`` before ``now`` (its ``auth_time``). Pure."""
    return AMR_MFA in claims.amr and now - claims.auth_time <= max_age


@dataclass(frozen=True, slots=True)
class TotpSetup:
    """A pending setup, as the user's app needs it. ``repr`` shows only the expiry.

    Attributes:
        setup_token: what ``confirm_setup`` takes back (single use).
        totp_url: the ``otpauth://`` Key URI.
        secret: the secret in base32, for typing in by hand.
        qr_svg: the Key URI as an inline SVG QR code.
        expires_at: when the setup token stops working.
    """

    setup_token: str = field(repr=False)
    totp_url: str = field(repr=False)
    secret: str = field(repr=False)
    qr_svg: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Enabled:
    """A confirmed setup: the authenticator is now the user's second factor.

    Attributes:
        replaced: an earlier authenticator was replaced (and removed).
        at: when it was confirmed.
    """

    replaced: bool
    at: datetime
    #: The first batch of recovery codes (display form), issued with a first
    #: enrolment when the user has none (by the enrolment flow); shown once.
    recovery_codes: tuple[str, ...] = field(default=(), repr=False)

    @property
    def first_enrolment(self) -> bool:
        """Whether the user had no TOTP second factor before (recovery codes go with it)."""
        return not self.replaced


@dataclass(frozen=True, slots=True)
class Confirmed:
    """What a confirmation's transaction decided: a wait, or the result (``None``: failed)."""

    wait: int | None = None
    enabled: Enabled | None = None


@dataclass(frozen=True, slots=True)
class PendingConfirmation:
    """A confirmation attempt counted so far, and where its setup token may be found."""

    admission: Admission
    user: User
    token_ids: tuple[str, ...] = field(repr=False)


class TotpEnrolment:
    """Enrolment actions of the TOTP strategy (see the module docstring).

    Args:
        config: the TOTP options (issuer, parameters of new authenticators,
            drift window, setup lifetime).
        db: the database.
        gate: the TOTP strategy's attempt gate; each confirmation is counted
            as action ``verify`` for the user's id, with the other TOTP checks.
        audit: the audit trail.
        dispatcher: delivers the notices.
        encryption_keys: seals the secrets (newest key) and opens them (any key).
        hashing_keys: hashes the setup tokens.
        clock: the time.
        service_name: named in the notices.
    """

    def __init__(
        self,
        *,
        config: TotpConfig,
        db: Database,
        gate: AttemptGate,
        audit: AuditTrail,
        dispatcher: Dispatcher,
        encryption_keys: KeyRing,
        hashing_keys: KeyRing,
        clock: Clock,
        service_name: str = "Keystile",
    ) -> None:
        self.config = config
        self.gate = gate
        self._db = db
        self._audit = audit
        self._dispatcher = dispatcher
        self._encryption_keys = encryption_keys
        self._hashing_keys = hashing_keys
        self._clock = clock
        self._service_name = service_name

    def recent_second_factor(self, claims: TokenClaims) -> bool:
        """:func:`second_factor_recent` of ``claims`` now."""
        return second_factor_recent(claims, now=self._clock.now())

    async def setup(
        self, user: User, *, second_factor_recent: bool, client_address: str | None = None
    ) -> TotpSetup:
        """Start enrolling a new authenticator for ``user``.

        Replaces the user's earlier pending setup (its token stops working);
        an active authenticator stays until the new one is confirmed.

        Args:
            user: the signed-in user.
            second_factor_recent: the session passed a second factor lately
                (see :func:`second_factor_recent`).
            client_address: for the audit record.

        Raises:
            AlreadyEnrolledError: an authenticator is active and
                ``second_factor_recent`` is false; nothing is stored.
            UnavailableError: the store is unreachable.
        """
        now = self._clock.now()
        config = self.config
        secret = core.new_secret(config.secret_bytes)
        sealed = seal_secret(self._encryption_keys, secret, user_id=user.id)
        authenticator_id = secrets.token_urlsafe(24)
        setup_token = secrets.token_urlsafe(SETUP_TOKEN_BYTES)
        expires_at = now + config.setup_lifetime

        def store_setup(conn: Executor) -> None:
            subject = user.subject
            lock_identity(conn, subject)
            active = store.get_active(conn, user.id)
            if active is not None and not second_factor_recent:
                raise AlreadyEnrolledError()  # rolls back: nothing was written
            store.delete_pending(conn, user.id)
            tokens.revoke_live(conn, subject=subject, purpose=PURPOSE, now=now)
            store.insert_pending(
                conn,
                authenticator_id=authenticator_id,
                user_id=user.id,
                sealed_secret=sealed.value,
                key_id=sealed.key_id,
                algorithm=config.algorithm,
                digits=config.digits,
                period=config.period,
                now=now,
            )
            tokens.insert_token(
                conn,
                jti=self._token_id(subject, setup_token),
                purpose=PURPOSE,
                subject=subject,
                now=now,
                expires_at=expires_at,
                # ``replaces``: the authenticator this setup may replace, so a
                # confirmation after the user's state changed meanwhile fails.
                extra={
                    "authenticator_id": authenticator_id,
                    "replaces": active.id if active is not None else None,
                },
            )
            insert_event(conn, self._event("setup", True, now, subject, client_address))

        await self._db.transact(store_setup)
        uri = key_uri(
            secret,
            issuer=config.issuer,
            account=user.email,
            algorithm=config.algorithm,
            digits=config.digits,
            period=config.period,
        )
        return TotpSetup(
            setup_token=setup_token,
            totp_url=uri,
            secret=base32_secret(secret),
            qr_svg=qr_svg(uri),
            expires_at=expires_at,
        )

    async def begin_confirmation(
        self, user: User, setup_token: str, *, client_address: str | None = None
    ) -> PendingConfirmation:
        """Count a confirmation attempt where it cannot be counted in the database, and
        find the ids its setup token may be stored under (nothing is checked yet)."""
        now = self._clock.now()
        subject = user.subject
        admission = await self.gate.enter("verify", subject, client_address, now=now)
        return PendingConfirmation(
            admission=admission,
            user=user,
            token_ids=tuple(self._token_ids(subject, setup_token[:MAX_TOKEN_INPUT])),
        )

    def confirm_in(self, conn: Executor, pending: PendingConfirmation, code: str) -> Confirmed:
        """Confirm inside the caller's transaction: lock, count, check, activate, audit.

        A wrong or malformed code, or a setup token that is unknown, expired,
        used, another user's or superseded, gives ``enabled=None`` (only a
        wrong code leaves the token usable); a refusal gives ``wait``.
        """
        attempt = pending.admission.attempt
        lock_identity(conn, attempt.identity)
        wait = pending.admission.count_in(conn)
        if wait is not None:
            return Confirmed(wait=wait)
        enabled = self._check(conn, pending.user, list(pending.token_ids), code, attempt.now)
        insert_event(
            conn,
            self._event(
                "confirm_setup",
                enabled is not None,
                attempt.now,
                attempt.identity,
                attempt.client_address,
            ),
        )
        return Confirmed(enabled=enabled)

    def notify_enabled(self, user: User, enabled: Enabled) -> None:
        """Tell the user their authenticator was turned on (or replaced); never a secret."""
        self._notify(
            totp_enabled_message(
                to=user.email,
                replaced=enabled.replaced,
                at=enabled.at,
                service_name=self._service_name,
            ),
            user.subject,
        )

    def _check(
        self, conn: Executor, user: User, token_ids: list[str], code: str, now: datetime
    ) -> Enabled | None:
        """Verify ``code`` against the token's pending secret; on success use the token up
        and activate the authenticator. ``None`` for any failure."""
        subject = user.subject
        extra = tokens.live_token_extra(conn, token_ids, purpose=PURPOSE, subject=subject, now=now)
        if extra is None:
            return None
        authenticator_id = extra.get("authenticator_id")
        if not isinstance(authenticator_id, str):
            return None
        pending = store.get_pending(conn, authenticator_id, user.id)
        if pending is None or pending.algorithm not in ALGORITHMS:
            return None
        active = store.get_active(conn, user.id)
        if (active.id if active is not None else None) != extra.get("replaces"):
            return None  # enabled, replaced or removed since this setup began
        try:
            secret = unseal_secret(self._encryption_keys, pending.sealed_secret, user_id=user.id)
        except UnsealError:
            # Its key left the ring, or the row was tampered with: the user sets up again.
            logger.warning("a pending TOTP setup cannot be opened with the encryption keys")
            return None
        check = core.verify_totp(
            secret,
            code,
            now=now,
            period=pending.period,
            window=self.config.window,
            last_step=pending.last_step,
            digits=pending.digits,
            algorithm=pending.algorithm,
        )
        if not check.accepted or check.step is None:
            return None
        if tokens.consume_token(conn, token_ids, purpose=PURPOSE, subject=subject, now=now) is None:
            return None
        if not store.activate(conn, authenticator_id, user.id, check.step, now):
            return None
        return Enabled(replaced=active is not None, at=now)

    async def disable(
        self, user: User, *, second_factor_recent: bool, client_address: str | None = None
    ) -> bool:
        """Remove the user's authenticators (active and pending) and setup tokens.

        Returns whether an active authenticator was removed (the user is
        notified only then); turning off what is off succeeds and changes nothing.

        Raises:
            InsufficientAuthenticationError: no second factor in the last
                :data:`RECENT_SECOND_FACTOR` (``max_age`` says how recent).
            UnavailableError: the store is unreachable.
        """
        if not second_factor_recent:
            raise InsufficientAuthenticationError(
                "Turning off two-step verification needs a recent second factor.",
                max_age=int(RECENT_SECOND_FACTOR.total_seconds()),
            )
        now = self._clock.now()
        subject = user.subject

        def remove(conn: Executor) -> bool:
            lock_identity(conn, subject)
            active = store.get_active(conn, user.id)
            store.delete_for_user(conn, user.id)
            # The codes stand in for the authenticator: they go with it (they would
            # otherwise still step up, and survive into a later enrolment).
            recovery_codes.delete_for_user(conn, user.id)
            tokens.revoke_live(conn, subject=subject, purpose=PURPOSE, now=now)
            insert_event(conn, self._event("disable", True, now, subject, client_address))
            return active is not None

        removed = await self._db.transact(remove)
        if removed:
            self._notify(
                totp_disabled_message(to=user.email, at=now, service_name=self._service_name),
                subject,
            )
        return removed

    def _token_id(self, subject: str, setup_token: str) -> str:
        """The stored id of a setup token: its keyed hash under the newest key."""
        return keyed_hash(self._hashing_keys.current, PURPOSE, subject, setup_token)

    def _token_ids(self, subject: str, setup_token: str) -> list[str]:
        """The ids a setup token may be stored under (one per hashing key)."""
        return keyed_hashes(self._hashing_keys, PURPOSE, subject, setup_token)

    def _event(
        self,
        action: str,
        success: bool,
        now: datetime,
        subject: str,
        client_address: str | None,
    ) -> AuditEvent:
        return self._audit.event(
            strategy=STRATEGY,
            action=action,
            success=success,
            now=now,
            identity=subject,
            subject=subject,
            client_address=client_address,
        )

    def _notify(self, message: Message, subject: str) -> None:
        """Send a notice in the background; a failed delivery is audited, never raised."""
        self._dispatcher.submit(message, on_failure=self._delivery_failed(subject))

    def _delivery_failed(self, subject: str) -> FailureCallback:
        async def record(_message: Message, _error: Exception) -> None:
            await self._audit.record(
                strategy=STRATEGY,
                action="notify",
                success=False,
                now=self._clock.now(),
                identity=subject,
                subject=subject,
            )

        return record
