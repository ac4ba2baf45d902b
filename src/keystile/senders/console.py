"""The development sender: print the message and keep it in the dev mailbox.

This is what ``keystile serve`` uses out of the box, so a developer sees the
code in the terminal or on ``/dev/mailbox``. It shows secret codes in clear
and must not be used in production.
"""

from __future__ import annotations

import sys
from typing import TextIO

from keystile.clock import Clock, SystemClock
from keystile.senders.base import Message, SendError
from keystile.senders.mailbox import DevMailbox

_RULE = "-" * 60


class ConsoleSender:
    """Writes each message to ``stream`` and keeps it in ``mailbox``.

    Args:
        mailbox: where messages are kept; a new one (``self.mailbox``) when omitted.
        stream: where messages are written; ``sys.stdout`` at the time of
            sending when omitted, so output redirection is honoured.
        clock: gives ``received_at`` for the mailbox.
    """

    __slots__ = ("_clock", "_stream", "mailbox")

    def __init__(
        self,
        mailbox: DevMailbox | None = None,
        *,
        stream: TextIO | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.mailbox = mailbox if mailbox is not None else DevMailbox()
        self._stream = stream
        self._clock = clock or SystemClock()

    async def send(self, message: Message) -> None:
        """Keep ``message`` in the mailbox, then print it (To, Subject, text body).

        The mailbox comes first so the message can still be read on the page
        when the terminal is gone.

        Raises:
            SendError: the stream cannot be written to.
        """
        self.mailbox.add(message, received_at=self._clock.now())
        stream = self._stream if self._stream is not None else sys.stdout
        block = "\n".join(
            [
                _RULE,
                f"To: {message.to}",
                f"Subject: {message.subject}",
                "",
                message.text.rstrip("\n"),
                _RULE,
                "",
            ]
        )
        try:
            stream.write(block)
            stream.flush()
        except (OSError, ValueError) as error:  # ValueError: the stream is closed
            raise SendError("the console stream cannot be written to") from error

    async def aclose(self) -> None:
        """Nothing to release: the stream is not ours to close, the mailbox stays readable."""

    def __repr__(self) -> str:
        return f"ConsoleSender(mailbox={self.mailbox!r})"
