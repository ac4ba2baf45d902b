"""Delivery of one-time codes: the :class:`Sender` protocol and its implementations.

- :class:`ConsoleSender` prints messages and keeps them in a :class:`DevMailbox`
  (development only: codes are shown in clear);
- :class:`SmtpSender` sends email;
- :class:`WebhookSender` posts JSON to an SMS gateway or relay, signed with HMAC.

Each raises :class:`SendError` when delivery fails; :func:`otp_message`
writes the message itself.
"""

from keystile.senders.base import Message, Sender, SendError
from keystile.senders.console import ConsoleSender
from keystile.senders.mailbox import DevMailbox, MailboxEntry
from keystile.senders.messages import otp_message
from keystile.senders.smtp import SmtpSender
from keystile.senders.webhook import WebhookSender

__all__ = [
    "ConsoleSender",
    "DevMailbox",
    "MailboxEntry",
    "Message",
    "SendError",
    "Sender",
    "SmtpSender",
    "WebhookSender",
    "otp_message",
]
