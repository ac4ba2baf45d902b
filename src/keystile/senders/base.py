"""What every sender shares: the :class:`Message`, the :class:`Sender` protocol, :class:`SendError`.

A message body carries a one-time code, so it is treated as a secret: it is
left out of ``repr`` and never quoted in an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from keystile.errors import KeystileError


@dataclass(frozen=True, slots=True)
class Message:
    """One message to one recipient (an email address or a phone number).

    ``text`` is the plain-text body and ``html`` an optional HTML alternative;
    both usually contain a secret code, so ``repr`` shows ``to`` and
    ``subject`` only. ``to`` and ``subject`` must be single lines: a line
    break there would let input add headers to an email.

    Raises:
        ValueError: ``to`` is empty, or ``to`` or ``subject`` contains a line break.
    """

    to: str
    subject: str
    text: str = field(repr=False)
    html: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.to.strip():
            raise ValueError("a message needs a recipient")
        for name, value in (("to", self.to), ("subject", self.subject)):
            if "\r" in value or "\n" in value:
                raise ValueError(f"the message {name} must not contain a line break")


class SendError(KeystileError):
    """A message could not be delivered.

    ``reason`` says what went wrong in words that are safe to log: never the
    body, the code, a password or a full URL. The underlying exception, when
    there is one, is chained as ``__cause__`` for the operator.
    """

    code = "send_failed"
    default_message = "The message could not be delivered."

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The message could not be delivered: {reason}.")


class Sender(Protocol):
    """Delivers a :class:`Message` (email, SMS gateway, console)."""

    async def send(self, message: Message) -> None:
        """Deliver ``message``, or raise :class:`SendError`; nothing else escapes."""
        ...

    async def aclose(self) -> None:
        """Release what the sender holds (connections, threads); called once at shutdown.

        Every sender has it, so whoever built a sender can close it without
        knowing its type. A sender that holds nothing does nothing here.
        """
        ...
