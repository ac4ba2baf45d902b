"""Security notices of the flows: what happened to an account, told to its owner.

A flow calls these after its transaction committed, so a notice never
announces something that was rolled back. Each one is handed to the
:class:`~keystile.senders.dispatch.Dispatcher` and sent in the background:
the answer neither waits for the mail server nor changes when it fails. A
failed delivery is logged by the dispatcher and audited here (``notify``,
failure), never raised. No notice carries a code, a secret or a link that
signs anyone in (see :mod:`keystile.senders.messages`).
"""

from __future__ import annotations

from keystile.clock import Clock
from keystile.senders.base import Message
from keystile.senders.dispatch import Dispatcher, FailureCallback
from keystile.senders.messages import (
    recovery_code_used_message,
    recovery_codes_generated_message,
    recovery_mfa_reset_message,
)
from keystile.store.users import User
from keystile.strategies.audit_trail import AuditTrail

RECOVERY_CODE = "recovery_code"
NOTIFY_ACTION = "notify"


class Notices:
    """Sends the account notices of the recovery-code lifecycle.

    Args:
        dispatcher: delivers in the background.
        audit: records a failed delivery.
        clock: the time the notices state.
        service_name: named in every notice.
    """

    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        audit: AuditTrail,
        clock: Clock,
        service_name: str = "Keystile",
    ) -> None:
        self._dispatcher = dispatcher
        self._audit = audit
        self._clock = clock
        self._service_name = service_name

    def recovery_code_used(self, user: User, remaining: int) -> None:
        """Tell ``user`` a recovery code was used and ``remaining`` unused ones are left."""
        message = recovery_code_used_message(
            to=user.email,
            remaining=max(remaining, 0),
            at=self._clock.now(),
            service_name=self._service_name,
        )
        self._send(message, user)

    def recovery_codes_generated(self, user: User) -> None:
        """Tell ``user`` a new batch replaced their recovery codes."""
        message = recovery_codes_generated_message(
            to=user.email, at=self._clock.now(), service_name=self._service_name
        )
        self._send(message, user)

    def mfa_reset_with_recovery_code(self, user: User) -> None:
        """Tell ``user`` their second factor was removed with a recovery code."""
        message = recovery_mfa_reset_message(
            to=user.email, at=self._clock.now(), service_name=self._service_name
        )
        self._send(message, user)

    def _send(self, message: Message, user: User) -> None:
        """Queue ``message`` (never waits, never raises; needs a running event loop)."""
        self._dispatcher.submit(message, on_failure=self._delivery_failed(user))

    def _delivery_failed(self, user: User) -> FailureCallback:
        async def record(_message: Message, _error: Exception) -> None:
            await self._audit.record(
                strategy=RECOVERY_CODE,
                action=NOTIFY_ACTION,
                success=False,
                now=self._clock.now(),
                identity=user.email,
                subject=user.subject,
            )

        return record
