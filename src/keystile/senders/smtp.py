"""Email over SMTP, with the standard library's :mod:`smtplib` run in the sender's own threads.

:mod:`smtplib` blocks, so each send runs in a thread and the event loop keeps
serving other requests. The threads are the sender's own small pool, not the
shared default one: Argon2 hashing runs there, and a slow mail server must
not hold the threads sign-ins need (nor the reverse). Every send opens its own
connection: sign-in codes are few and far between, and a fresh connection
cannot be left half-broken by an earlier failure.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Literal, get_args

from keystile.senders.base import Message, SendError

Security = Literal["none", "starttls", "tls"]


class SmtpSender:
    """Sends each :class:`Message` as a ``multipart/alternative`` email (text, then HTML).

    Args:
        host, port: the SMTP server (the submission port is usually 587 with
            ``starttls``, 465 with ``tls``).
        from_address: the ``From`` header, e.g. ``"Keystile <no-reply@example.com>"``;
            its domain also names the ``Message-ID``.
        security: ``"starttls"`` (upgrade a plain connection, required to
            succeed), ``"tls"`` (TLS from the first byte) or ``"none"``
            (a local relay only).
        username, password: sign in with AUTH after TLS; both or neither.
        timeout: seconds for connecting and for each server answer.
        tls_context: the TLS settings; by default the system's trusted CAs
            with host-name checking. Pass one to trust a private CA.
        threads: how many SMTP sessions may run at once, each in a thread of
            the sender's own pool (closed by :meth:`aclose`).

    Raises:
        ValueError: an unknown ``security``, a username without a password
            (or the reverse), credentials with ``security="none"`` (they would
            cross the network in clear), an unusable ``from_address`` or a
            timeout that is not positive, or ``threads`` below 1.
    """

    __slots__ = (
        "_executor",
        "_password",
        "_tls_context",
        "from_address",
        "host",
        "port",
        "security",
        "timeout",
        "username",
    )

    def __init__(
        self,
        *,
        host: str,
        port: int,
        from_address: str,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
        threads: int = 4,
    ) -> None:
        if security not in get_args(Security):
            raise ValueError(f"security must be one of {get_args(Security)}, not {security!r}")
        if (username is None) != (password is None):
            raise ValueError("give both an SMTP username and a password, or neither")
        if username is not None and security == "none":
            raise ValueError("SMTP credentials need security='starttls' or 'tls'")
        if "\r" in from_address or "\n" in from_address or "@" not in parseaddr(from_address)[1]:
            raise ValueError("from_address must be one email address on one line")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.host = host
        self.port = port
        self.from_address = from_address
        self.security: Security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        self._tls_context = tls_context
        # Threads start on the first send, so a sender that never sends costs none.
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="keystile-smtp")

    def build(self, message: Message) -> EmailMessage:
        """The email for ``message``, with ``Date`` and ``Message-ID`` headers."""
        domain = parseaddr(self.from_address)[1].rpartition("@")[2]
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Date"] = format_datetime(datetime.now(UTC))
        email["Message-ID"] = make_msgid(domain=domain)
        email.set_content(message.text)
        if message.html is not None:
            email.add_alternative(message.html, subtype="html")
        return email

    async def send(self, message: Message) -> None:
        """Deliver ``message`` to the SMTP server.

        Raises:
            SendError: ``message.to`` is not one bare address (checked before
                any connection), or the connection, TLS, sign-in or any SMTP
                command failed, or the server refused the recipient, or the
                sender is closed. The reason names the step, never the body.
        """
        if not _is_bare_address(message.to):
            raise SendError("the recipient is not one plain email address")
        try:
            email = self.build(message)
        except (ValueError, TypeError) as error:
            raise SendError("the email headers are not valid") from error
        loop = asyncio.get_running_loop()
        try:
            delivery = loop.run_in_executor(self._executor, self._deliver, email, message.to)
        except RuntimeError as error:  # the pool was shut down by aclose
            raise SendError("the SMTP sender is closed") from error
        await delivery

    async def aclose(self) -> None:
        """Stop the sender's threads; sessions still running finish on their own.

        Does not wait for them (a hung server would hold shutdown for its
        timeout); later sends fail with :class:`SendError`.
        """
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _deliver(self, email: EmailMessage, recipient: str) -> None:
        try:
            self._exchange(email, recipient)
        except smtplib.SMTPException as error:
            raise SendError(_smtp_reason(error)) from error
        except ssl.SSLError as error:
            raise SendError("TLS with the SMTP server failed") from error
        except TimeoutError as error:
            raise SendError("the SMTP server did not answer in time") from error
        except OSError as error:
            raise SendError("could not connect to the SMTP server") from error

    def _exchange(self, email: EmailMessage, recipient: str) -> None:
        """Run the SMTP session; the envelope names ``recipient`` and no one else.

        The recipient is given to ``RCPT TO`` explicitly rather than parsed back
        out of the ``To:`` header: header parsing would turn a crafted identity
        (``a@x.io, b@y.io`` or ``<x@evil.com>a@corp.com``) into other or extra
        recipients, where the envelope must carry the one address asked for.
        """
        context = self._tls_context or ssl.create_default_context()
        client: smtplib.SMTP
        if self.security == "tls":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            if self.security == "starttls":
                client.starttls(context=context)
            if self.username is not None and self._password is not None:
                client.login(self.username, self._password)
            refused = client.send_message(email, to_addrs=[recipient])
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)

    def __repr__(self) -> str:
        return (
            f"SmtpSender(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"from_address={self.from_address!r}, username={self.username!r})"
        )


# Characters that make an address more than one bare addr-spec to a header or
# envelope parser: display names, angle brackets, comments, quoting, lists, groups.
_NOT_IN_BARE_ADDRESS = frozenset('<>(),;:"[]\\')


def _is_bare_address(address: str) -> bool:
    """Whether ``address`` is one plain ``local@domain`` that parses as itself.

    :mod:`smtplib` re-parses every envelope address (``quoteaddr``), so text
    such as ``<attacker@evil.com>ceo@corp.com`` would become ``RCPT
    TO:<attacker@evil.com>`` even when given as ``to_addrs``. Identities are
    validated long before a sender sees them; this keeps the sender safe on
    its own for library users who build a :class:`Message` themselves.
    """
    if any(ch.isspace() or ch in _NOT_IN_BARE_ADDRESS for ch in address):
        return False
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain) and parseaddr(address) == ("", address)


def _smtp_reason(error: smtplib.SMTPException) -> str:
    """Which SMTP step failed, in safe words (server answers may quote what they were sent)."""
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return "the SMTP server rejected the credentials"
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return "the SMTP server does not offer a required extension (STARTTLS, AUTH or SMTPUTF8)"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "the SMTP server refused the recipient"
    if isinstance(error, smtplib.SMTPSenderRefused):
        return "the SMTP server refused the sender address"
    if isinstance(error, smtplib.SMTPDataError):
        return "the SMTP server refused the message"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        # smtplib reports a read that timed out as a disconnection; say what happened.
        if isinstance(error.__context__, TimeoutError):
            return "the SMTP server did not answer in time"
        return "the SMTP server closed the connection"
    if isinstance(error, smtplib.SMTPConnectError):
        return "the SMTP server refused the connection"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"the SMTP server answered {error.smtp_code}"
    return "the SMTP exchange failed"
