"""The development mailbox pages, mounted on a FastAPI app and called through ``TestClient``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from keystile.senders import DevMailbox, Message
from keystile.web.mailbox import mailbox_router
from tests.servers import LOOPBACK

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def mailbox() -> DevMailbox:
    """A mailbox with two messages, the second one hostile."""
    mailbox = DevMailbox()
    mailbox.add(
        Message(to="alice@example.com", subject="Your sign-in code", text="Code: XKPTMH"),
        received_at=T0,
    )
    mailbox.add(
        Message(
            to="bob@example.com",
            subject="<script>alert(1)</script>",
            text="Code: QWERTY </pre><img src=x>",
        ),
        received_at=T0 + timedelta(minutes=1),
    )
    return mailbox


@pytest.fixture
def client(mailbox: DevMailbox) -> Iterator[TestClient]:
    """An app with only the mailbox router mounted."""
    app = FastAPI()
    app.include_router(mailbox_router(mailbox))
    with TestClient(app, client=LOOPBACK) as client:
        yield client


def test_page_lists_every_message(client: TestClient) -> None:
    """The HTML page shows recipient, subject, time and text of each message."""
    response = client.get("/dev/mailbox")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.text
    assert "alice@example.com" in html
    assert "Your sign-in code" in html
    assert "Code: XKPTMH" in html
    assert "2026-01-01 12:00:00 UTC" in html
    assert "This page exists only in development mode." in html


def test_page_lists_newest_first(client: TestClient) -> None:
    """The message received last comes first on the page."""
    html = client.get("/dev/mailbox").text
    assert html.index("bob@example.com") < html.index("alice@example.com")


def test_page_escapes_message_fields(client: TestClient) -> None:
    """A subject or body holding markup is shown as text, never run as script."""
    html = client.get("/dev/mailbox").text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x>" not in html
    assert "&lt;/pre&gt;&lt;img src=x&gt;" in html


def test_page_forbids_scripts(client: TestClient) -> None:
    """The page carries a Content-Security-Policy that allows no script, as a second defence."""
    policy = client.get("/dev/mailbox").headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy


def test_empty_mailbox_says_so() -> None:
    """With no messages the page says there are none."""
    app = FastAPI()
    app.include_router(mailbox_router(DevMailbox()))
    with TestClient(app, client=LOOPBACK) as client:
        assert "No messages yet." in client.get("/dev/mailbox").text
        assert client.get("/dev/mailbox.json").json() == []


def test_json_lists_newest_first(client: TestClient) -> None:
    """The JSON gives ``to``, ``subject``, ``text`` and ``received_at``, newest first."""
    response = client.get("/dev/mailbox.json")
    assert response.status_code == 200
    assert response.json() == [
        {
            "to": "bob@example.com",
            "subject": "<script>alert(1)</script>",
            "text": "Code: QWERTY </pre><img src=x>",
            "received_at": "2026-01-01T12:01:00+00:00",
        },
        {
            "to": "alice@example.com",
            "subject": "Your sign-in code",
            "text": "Code: XKPTMH",
            "received_at": "2026-01-01T12:00:00+00:00",
        },
    ]


@pytest.mark.parametrize("path", ["/dev/mailbox", "/dev/mailbox.json"])
def test_answers_are_not_cached(client: TestClient, path: str) -> None:
    """The pages show secret codes, so no cache may keep them."""
    assert client.get(path).headers["Cache-Control"] == "no-store"


def test_new_messages_show_without_rebuilding_the_router(
    client: TestClient, mailbox: DevMailbox
) -> None:
    """The router reads the mailbox on every request."""
    mailbox.clear()
    mailbox.add(Message(to="carol@example.com", subject="Hi", text="Code: ZZZZZZ"), received_at=T0)
    assert [item["to"] for item in client.get("/dev/mailbox.json").json()] == ["carol@example.com"]


def test_routes_stay_out_of_the_openapi_schema(client: TestClient) -> None:
    """Development-only routes are not part of the documented API."""
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(path.startswith("/dev/") for path in paths)
