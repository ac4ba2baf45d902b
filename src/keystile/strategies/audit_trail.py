"""Recording attempts in the audit log, shared by every strategy.

One record per attempt: strategy, action, success or failure, the subject
when known, the normalised identity, the client address under the privacy
mode, and the time. Never a code, secret or token: there is no field for one.
"""

from __future__ import annotations

from datetime import datetime

from keystile.crypto.keyring import Key
from keystile.limits.protection import Attempt
from keystile.privacy import AddressPrivacy, protect_address
from keystile.store.audit import BLOCKED_SUFFIX, AuditEvent, AuditStore


class AuditTrail:
    """Writes audit events with the deployment's address privacy applied."""

    def __init__(self, store: AuditStore, *, privacy: AddressPrivacy, key: Key) -> None:
        self._store = store
        self._privacy = privacy
        self._key = key

    def event(
        self,
        *,
        strategy: str,
        action: str,
        success: bool,
        now: datetime,
        identity: str | None = None,
        subject: str | None = None,
        client_address: str | None = None,
    ) -> AuditEvent:
        """The event to store, with the address privacy applied (for one-transaction writers)."""
        return AuditEvent(
            occurred_at=now,
            strategy=strategy,
            action=action,
            success=success,
            subject=subject,
            identity=identity,
            client_address=protect_address(client_address, self._privacy, key=self._key),
        )

    async def record(
        self,
        *,
        strategy: str,
        action: str,
        success: bool,
        now: datetime,
        identity: str | None = None,
        subject: str | None = None,
        client_address: str | None = None,
    ) -> None:
        """Append one event (awaited, so it is stored before the caller answers)."""
        await self._store.record(
            self.event(
                strategy=strategy,
                action=action,
                success=success,
                now=now,
                identity=identity,
                subject=subject,
                client_address=client_address,
            )
        )

    def blocked_event(self, attempt: Attempt) -> AuditEvent:
        """The record of an attempt a brute-force limit refused.

        Stored under ``<action>_blocked``: not itself a failure of the action,
        so a lockout does not extend itself.
        """
        return self.event(
            strategy=attempt.strategy,
            action=attempt.action + BLOCKED_SUFFIX,
            success=False,
            now=attempt.now,
            identity=attempt.identity,
            client_address=attempt.client_address,
        )
