"""The development mailbox: the last messages sent, kept in process memory.

It backs the ``/dev/mailbox`` page so a developer can sign in without a mail
server. It holds secret codes and lives in one process only, so it belongs
to development mode and never to production.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from keystile.senders.base import Message

DEFAULT_MAXLEN = 100


@dataclass(frozen=True, slots=True)
class MailboxEntry:
    """A message and when the mailbox received it (aware UTC)."""

    message: Message
    received_at: datetime


class DevMailbox:
    """The newest ``maxlen`` messages; older ones fall out.

    Bounded so a long-running development server cannot grow without limit.
    Thread-safe: senders add from the event loop while the page reads, and
    tests may add from worker threads.
    """

    __slots__ = ("_entries", "_lock")

    def __init__(self, maxlen: int = DEFAULT_MAXLEN) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be at least 1")
        self._entries: deque[MailboxEntry] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    @property
    def maxlen(self) -> int:
        """How many messages the mailbox keeps."""
        maxlen = self._entries.maxlen
        assert maxlen is not None
        return maxlen

    def add(self, message: Message, *, received_at: datetime) -> None:
        """Keep ``message``, dropping the oldest one when full.

        Raises:
            ValueError: ``received_at`` is naive.
        """
        if received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        with self._lock:
            self._entries.append(MailboxEntry(message, received_at))

    def entries(self) -> tuple[MailboxEntry, ...]:
        """Every kept message, newest first (the order they were added, reversed)."""
        with self._lock:
            return tuple(reversed(self._entries))

    def clear(self) -> None:
        """Forget every message."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return f"DevMailbox(maxlen={self.maxlen}, messages={len(self)})"
