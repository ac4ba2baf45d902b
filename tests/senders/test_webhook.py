"""The webhook sender against a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx
import pytest

from keystile.senders import Message, SendError, WebhookSender
from keystile.senders.webhook import verify
from tests.servers import free_port

CODE = "XKPTMH"
SECRET = "webhook-shared-secret"
MESSAGE = Message(
    to="+15550100", subject="Your sign-in code", text=f"Your code is {CODE}.", html="<b>x</b>"
)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class HookServer(ThreadingHTTPServer):
    """Records each POST; answers ``status``, a redirect on ``/redirect``, late on ``/slow``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HookHandler)
        self.received: list[Received] = []
        self.status = 204

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class HookHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = self.server
        assert isinstance(server, HookServer)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.received.append(Received(self.path, dict(self.headers.items()), body))
        if self.path == "/slow":
            time.sleep(1)
        if self.path == "/redirect":
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
        else:
            self.send_response(server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def hook() -> Iterator[HookServer]:
    """A local HTTP server in a background thread."""
    server = HookServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


async def _send(sender: WebhookSender, message: Message) -> None:
    async with sender:
        await sender.send(message)


def _send_error(sender: WebhookSender) -> SendError:
    with pytest.raises(SendError) as caught:
        anyio.run(_send, sender, MESSAGE)
    assert CODE not in str(caught.value)
    assert caught.value.code == "send_failed"
    return caught.value


def test_posts_signed_json(hook: HookServer) -> None:
    """The body is JSON ``{to, subject, text}``; the signature covers the timestamp and body."""
    sender = WebhookSender(f"{hook.url}/sms", secret=SECRET, wall_clock=lambda: 1_700_000_000.7)
    anyio.run(_send, sender, MESSAGE)
    [request] = hook.received
    assert request.path == "/sms"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "to": "+15550100",
        "subject": "Your sign-in code",
        "text": f"Your code is {CODE}.",
    }
    signed = b"1700000000." + request.body
    expected = "t=1700000000,v1=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, request.headers["X-Keystile-Signature"])


def test_a_receiver_refuses_an_old_or_altered_request(hook: HookServer) -> None:
    """The timestamp is signed: a replay after the tolerance, or a changed time or body, fails."""
    anyio.run(_send, WebhookSender(hook.url, secret=SECRET, wall_clock=lambda: 1_000.0), MESSAGE)
    [request] = hook.received
    header = request.headers["X-Keystile-Signature"]
    assert verify(request.body, header, SECRET, now=1_000 + 300)
    assert not verify(request.body, header, SECRET, now=1_000 + 301)
    assert not verify(request.body, header.replace("t=1000", "t=1200"), SECRET, now=1_200)
    assert not verify(request.body + b" ", header, SECRET, now=1_000)
    assert not verify(request.body, header, "another-secret", now=1_000)
    for malformed in ("", "v1=abc", "t=,v1=", "t=abc,v1=00", "sha256=" + "0" * 64):
        assert not verify(request.body, malformed, SECRET, now=1_000)


def test_without_a_secret_there_is_no_signature(hook: HookServer) -> None:
    """An unsigned sender sends no signature header."""
    anyio.run(_send, WebhookSender(hook.url), MESSAGE)
    [request] = hook.received
    assert "X-Keystile-Signature" not in request.headers


def test_an_error_answer_is_a_send_error(hook: HookServer) -> None:
    """A 500 answer becomes ``SendError`` naming the status, not the body."""
    hook.status = 500
    error = _send_error(WebhookSender(hook.url, secret=SECRET))
    assert error.reason == "the webhook at 127.0.0.1 answered HTTP 500"


def test_redirects_are_not_followed(hook: HookServer) -> None:
    """A redirect is a failure, not a second POST somewhere else, even with a following client."""

    async def send_with_following_client() -> None:
        async with httpx.AsyncClient(follow_redirects=True) as client:
            await WebhookSender(f"{hook.url}/redirect", client=client).send(MESSAGE)

    with pytest.raises(SendError, match="answered HTTP 307"):
        anyio.run(send_with_following_client)
    assert [request.path for request in hook.received] == ["/redirect"]


def test_a_closed_port_is_a_send_error() -> None:
    """Nothing listening becomes ``SendError``."""
    error = _send_error(WebhookSender(f"http://127.0.0.1:{free_port()}/sms"))
    assert error.reason == "could not reach the webhook at 127.0.0.1"


def test_a_slow_endpoint_times_out(hook: HookServer) -> None:
    """No answer within ``timeout`` becomes ``SendError``."""
    error = _send_error(WebhookSender(f"{hook.url}/slow", timeout=0.2))
    assert error.reason == "the webhook at 127.0.0.1 did not answer in time"


def test_aclose_leaves_a_shared_client_open(hook: HookServer) -> None:
    """A client passed in stays the caller's; the sender closes only the client it made."""

    async def scenario() -> tuple[bool, bool]:
        async with httpx.AsyncClient() as shared:
            sender = WebhookSender(hook.url, client=shared)
            await sender.send(MESSAGE)
            await sender.aclose()
            owned = WebhookSender(hook.url)
            await owned.aclose()
            return shared.is_closed, owned._client.is_closed

    assert anyio.run(scenario) == (False, True)


def test_repr_hides_the_secret_and_the_url() -> None:
    """The secret, and a token the URL may carry, stay out of ``repr``."""
    sender = WebhookSender("https://sms.example.com/hook?token=abc123", secret=SECRET)
    assert repr(sender) == "WebhookSender(host='sms.example.com', signed=True)"


@pytest.mark.parametrize(
    ("url", "options", "problem"),
    [
        ("ftp://sms.example.com/", {}, "absolute http or https URL"),
        ("/relative/path", {}, "absolute http or https URL"),
        ("https://sms.example.com/", {"secret": ""}, "secret must not be empty"),
        ("https://sms.example.com/", {"timeout": -1.0}, "timeout must be positive"),
    ],
)
def test_unusable_settings_are_refused(url: str, options: dict[str, Any], problem: str) -> None:
    """Configuration mistakes fail at construction."""
    with pytest.raises(ValueError, match=problem):
        WebhookSender(url, **options)
