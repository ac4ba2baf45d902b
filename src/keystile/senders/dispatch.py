"""Sending off the request path.

A request for a code answers as soon as the code is stored; delivery runs
as a background task, so mail latency and mail failures change neither the
answer nor its timing (they would otherwise tell a caller whether the
identity exists). Failures go to an ``on_failure`` callback (log and audit),
never to the caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from keystile.senders.base import Message, Sender

logger = logging.getLogger("keystile.senders")

FailureCallback = Callable[[Message, Exception], Awaitable[None]]


class Dispatcher:
    """Runs ``sender.send`` in background tasks and keeps track of them."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self._pending: set[asyncio.Task[None]] = set()

    def submit(
        self, message: Message, *, on_failure: FailureCallback, discard: bool = False
    ) -> None:
        """Schedule delivery of ``message`` and return at once.

        With ``discard`` the same task is scheduled and sends nothing: callers
        take this path for an identity that gets no message, so that asking
        costs the same work either way.
        """
        task = asyncio.get_running_loop().create_task(self._deliver(message, on_failure, discard))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, message: Message, on_failure: FailureCallback, discard: bool) -> None:
        if discard:
            return
        try:
            await self.sender.send(message)
        except Exception as error:  # any failure of any sender: log, audit, never raise
            # The type and the safe text only; the message body holds the code.
            logger.warning("delivery to a recipient failed: %s", type(error).__name__)
            try:
                await on_failure(message, error)
            except Exception as callback_error:
                logger.error(
                    "recording a failed delivery failed: %s", type(callback_error).__name__
                )

    async def drain(self, seconds: float = 10.0) -> None:
        """Wait (up to ``seconds``) for deliveries in flight, e.g. at shutdown."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=seconds)
