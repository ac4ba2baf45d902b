"""The SMTP sender against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import hmac
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keystile.senders import Message, SendError, SmtpSender, otp_message
from tests.servers import free_port

CODE = "XKPTMH"
FROM = "Keystile <no-reply@keystile.test>"
PASSWORD = "correct horse battery"


@dataclass
class Mail:
    """What the server received."""

    mail_from: str
    rcpt_tos: list[str]
    email: EmailMessage
    authenticated: bool | None


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps every message; refuses ``nobody@`` recipients.

    ``rcpt_seen`` lists every ``RCPT TO`` address the handler was asked about.
    """

    received: list[Mail] = field(default_factory=list)
    rcpt_seen: list[str] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.rcpt_seen.append(address)
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        email = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(email, EmailMessage)
        self.received.append(
            Mail(envelope.mail_from, list(envelope.rcpt_tos), email, session.authenticated)
        )
        return "250 Message accepted for delivery"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"alice"
        and hmac.compare_digest(auth_data.password, PASSWORD.encode())
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class Server:
    recorder: Recorder
    port: int


@pytest.fixture
def run_server() -> Iterator[Any]:
    """Start aiosmtpd servers on free loopback ports; all are stopped after the test."""
    controllers: list[Controller] = []

    def start(**smtp_options: Any) -> Server:
        recorder, port = Recorder(), free_port()
        controller = Controller(recorder, hostname="127.0.0.1", port=port, **smtp_options)
        controller.start()
        controllers.append(controller)
        return Server(recorder, port)

    yield start
    for controller in controllers:
        controller.stop()


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and the contexts that use it."""

    path: Path
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    """A throwaway self-signed certificate valid for the IP address 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return Certificate(cert_path, server, client)


def _otp(to: str = "alice@example.com") -> Message:
    return otp_message(
        to=to,
        code=CODE,
        expires_at=datetime(2026, 1, 1, 12, 10, tzinfo=UTC),
        lifetime=timedelta(minutes=10),
    )


def _send(sender: SmtpSender, message: Message) -> None:
    anyio.run(sender.send, message)


def _send_error(sender: SmtpSender, message: Message) -> SendError:
    with pytest.raises(SendError) as caught:
        _send(sender, message)
    error = caught.value
    assert CODE not in str(error)
    assert CODE not in error.reason
    assert PASSWORD not in str(error)
    return error


def test_delivers_a_multipart_email(run_server: Any) -> None:
    """The server receives From, To, Subject, Date, Message-ID, and text and HTML parts."""
    server = run_server()
    sender = SmtpSender(host="127.0.0.1", port=server.port, from_address=FROM, security="none")
    _send(sender, _otp())
    [mail] = server.recorder.received
    assert mail.mail_from == "no-reply@keystile.test"
    assert mail.rcpt_tos == ["alice@example.com"]
    email = mail.email
    assert email["From"] == FROM
    assert email["To"] == "alice@example.com"
    assert email["Subject"] == "Your Keystile sign-in code"
    assert email["Date"] is not None
    assert email["Message-ID"].endswith("@keystile.test>")
    assert email.get_content_type() == "multipart/alternative"
    plain = email.get_body(preferencelist=("plain",))
    html = email.get_body(preferencelist=("html",))
    assert plain is not None
    assert html is not None
    assert isinstance(plain, EmailMessage)
    assert isinstance(html, EmailMessage)
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert CODE in plain.get_content()
    assert CODE in html.get_content()


def test_a_message_without_html_is_plain_text(run_server: Any) -> None:
    """With no HTML alternative the email is a single text/plain part."""
    server = run_server()
    sender = SmtpSender(host="127.0.0.1", port=server.port, from_address=FROM, security="none")
    _send(sender, Message(to="bob@example.com", subject="Hello", text=f"Code {CODE}"))
    [mail] = server.recorder.received
    assert mail.email.get_content_type() == "text/plain"
    assert mail.email.get_content().strip() == f"Code {CODE}"


def test_server_not_listening_is_a_send_error() -> None:
    """A refused connection becomes ``SendError``, and the error does not quote the body."""
    sender = SmtpSender(host="127.0.0.1", port=free_port(), from_address=FROM, security="none")
    error = _send_error(sender, _otp())
    assert error.reason == "could not connect to the SMTP server"
    assert error.code == "send_failed"
    assert str(error) == "The message could not be delivered: could not connect to the SMTP server."


def test_a_silent_server_times_out() -> None:
    """A server that accepts the connection but never greets ends in a timeout ``SendError``."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        sender = SmtpSender(
            host="127.0.0.1", port=port, from_address=FROM, security="none", timeout=0.2
        )
        error = _send_error(sender, _otp())
    assert error.reason == "the SMTP server did not answer in time"


def test_a_refused_recipient_is_a_send_error(run_server: Any) -> None:
    """A 5xx answer to RCPT TO becomes ``SendError``; nothing is delivered."""
    server = run_server()
    sender = SmtpSender(host="127.0.0.1", port=server.port, from_address=FROM, security="none")
    error = _send_error(sender, _otp(to="nobody@example.com"))
    assert error.reason == "the SMTP server refused the recipient"
    assert server.recorder.received == []


def test_starttls_is_required_when_asked_for(run_server: Any) -> None:
    """``security="starttls"`` refuses to go on in clear when the server offers no STARTTLS."""
    server = run_server()
    sender = SmtpSender(host="127.0.0.1", port=server.port, from_address=FROM)
    error = _send_error(sender, _otp())
    assert error.reason.startswith("the SMTP server does not offer a required extension")
    assert server.recorder.received == []


def test_starttls_and_auth(run_server: Any, certificate: Certificate) -> None:
    """With STARTTLS and the right credentials the server sees an authenticated session."""
    server = run_server(
        tls_context=certificate.server,
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    )
    sender = SmtpSender(
        host="127.0.0.1",
        port=server.port,
        from_address=FROM,
        username="alice",
        password=PASSWORD,
        tls_context=certificate.client,
    )
    _send(sender, _otp())
    [mail] = server.recorder.received
    assert mail.authenticated is True


def test_wrong_credentials_are_a_send_error(run_server: Any, certificate: Certificate) -> None:
    """A rejected sign-in becomes ``SendError`` that names neither password nor code."""
    server = run_server(
        tls_context=certificate.server, authenticator=_authenticator, auth_required=True
    )
    sender = SmtpSender(
        host="127.0.0.1",
        port=server.port,
        from_address=FROM,
        username="alice",
        password="wrong password",
        tls_context=certificate.client,
    )
    error = _send_error(sender, _otp())
    assert "wrong password" not in str(error)
    assert error.reason == "the SMTP server rejected the credentials"
    assert server.recorder.received == []


def test_an_untrusted_certificate_is_refused(run_server: Any, certificate: Certificate) -> None:
    """By default the server certificate is verified: a self-signed one fails before any data."""
    server = run_server(tls_context=certificate.server, require_starttls=True)
    sender = SmtpSender(host="127.0.0.1", port=server.port, from_address=FROM)
    error = _send_error(sender, _otp())
    assert error.reason == "TLS with the SMTP server failed"
    assert server.recorder.received == []


def test_implicit_tls(run_server: Any, certificate: Certificate) -> None:
    """``security="tls"`` speaks TLS from the first byte (port 465 style)."""
    server = run_server(ssl_context=certificate.server)
    sender = SmtpSender(
        host="127.0.0.1",
        port=server.port,
        from_address=FROM,
        security="tls",
        tls_context=certificate.client,
    )
    _send(sender, _otp())
    assert len(server.recorder.received) == 1


def test_repr_hides_the_password() -> None:
    """The password never shows in ``repr``."""
    sender = SmtpSender(
        host="mail.example.com",
        port=587,
        from_address=FROM,
        username="alice",
        password=PASSWORD,
    )
    assert PASSWORD not in repr(sender)
    assert repr(sender) == (
        "SmtpSender(host='mail.example.com', port=587, security='starttls', "
        "from_address='Keystile <no-reply@keystile.test>', username='alice')"
    )


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"security": "ssl"}, "security must be one of"),
        ({"username": "alice"}, "give both an SMTP username and a password, or neither"),
        ({"password": PASSWORD}, "give both an SMTP username and a password, or neither"),
        (
            {"security": "none", "username": "alice", "password": PASSWORD},
            "SMTP credentials need security='starttls' or 'tls'",
        ),
        ({"from_address": "no address"}, "from_address must be one email address on one line"),
        ({"from_address": "a@b.test\r\nBcc: x@y"}, "from_address must be one email address"),
        ({"timeout": 0}, "timeout must be positive"),
    ],
)
def test_unsafe_or_unusable_settings_are_refused(options: dict[str, Any], problem: str) -> None:
    """Mistakes fail at construction, before any code is sent: e.g. a password sent in clear."""
    values: dict[str, Any] = {"host": "mail.example.com", "port": 587, "from_address": FROM}
    values.update(options)
    with pytest.raises(ValueError, match=problem):
        SmtpSender(**values)


@pytest.mark.parametrize(
    "to",
    [
        "victim@example.com, attacker@evil.example",
        "victim@example.com; attacker@evil.example",
        "<attacker@evil.example>victim@example.com",
        "Victim <victim@example.com>, attacker@evil.example",
    ],
)
def test_a_crafted_to_header_never_adds_or_changes_recipients(run_server: Any, to: str) -> None:
    """Text naming other or several mailboxes is refused, never expanded into recipients.

    Identities are validated before they reach a sender; this is the second wall.
    :mod:`smtplib` would re-parse even an explicit envelope address, so such text is
    refused before any connection: the server is asked about no recipient at all.
    """
    server = run_server()
    sender = SmtpSender(host="127.0.0.1", port=server.port, from_address=FROM, security="none")
    error = _send_error(sender, _otp(to=to))
    assert error.reason == "the recipient is not one plain email address"
    assert server.recorder.rcpt_seen == []
    assert server.recorder.received == []


def test_the_envelope_names_exactly_the_one_recipient(run_server: Any) -> None:
    """One valid address: one ``RCPT TO``, that address, and the ``To:`` header says the same."""
    server = run_server()
    sender = SmtpSender(host="127.0.0.1", port=server.port, from_address=FROM, security="none")
    _send(sender, _otp(to="carol@example.com"))
    [mail] = server.recorder.received
    assert mail.rcpt_tos == ["carol@example.com"]
    assert server.recorder.rcpt_seen == ["carol@example.com"]
    assert mail.email["To"] == "carol@example.com"


def test_an_internationalised_recipient_is_one_smtputf8_recipient(run_server: Any) -> None:
    """A Unicode address (the canonical identity form) goes out as that one mailbox."""
    server = run_server(enable_SMTPUTF8=True)
    sender = SmtpSender(host="127.0.0.1", port=server.port, from_address=FROM, security="none")
    _send(sender, _otp(to="jürgen@bücher.example"))
    [mail] = server.recorder.received
    assert mail.rcpt_tos == ["jürgen@bücher.example"]
    assert server.recorder.rcpt_seen == ["jürgen@bücher.example"]


def test_smtp_does_not_wait_for_the_shared_thread_pool(run_server: Any) -> None:
    """A send completes while every thread of the default pool (Argon2's) is taken.

    The sender runs :mod:`smtplib` on its own threads, so hashing load cannot
    hold mail back, and a hung mail server cannot hold sign-ins back.
    """
    server = run_server()
    sender = SmtpSender(host="127.0.0.1", port=server.port, from_address=FROM, security="none")

    async def scenario() -> None:
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = 1
        release = threading.Event()

        async def occupy() -> None:
            await anyio.to_thread.run_sync(release.wait)

        async with anyio.create_task_group() as group:
            group.start_soon(occupy)
            await anyio.sleep(0.05)  # the one default thread is now busy
            with anyio.fail_after(5):
                await sender.send(_otp())
            release.set()
        await sender.aclose()

    anyio.run(scenario)
    [mail] = server.recorder.received
    assert mail.rcpt_tos == ["alice@example.com"]


def test_a_closed_smtp_sender_refuses_to_send(run_server: Any) -> None:
    """After ``aclose`` a send fails with SendError and opens no connection."""
    server = run_server()
    sender = SmtpSender(host="127.0.0.1", port=server.port, from_address=FROM, security="none")
    anyio.run(sender.aclose)
    error = _send_error(sender, _otp())
    assert error.reason == "the SMTP sender is closed"
    assert server.recorder.received == []
    assert server.recorder.rcpt_seen == []
