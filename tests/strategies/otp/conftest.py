"""OTP fixtures: a real SMTP server (aiosmtpd) and an app that sends codes to it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from keystile.settings import Settings
from tests.servers import free_port


@dataclass
class Inbox:
    """Every mail the SMTP server received, in order."""

    mails: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        mail = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.mails.append(mail)
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Block until ``count`` mails have arrived (delivery runs in the background)."""
        deadline = time.monotonic() + timeout
        while len(self.mails) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} mails, got {len(self.mails)}")
            time.sleep(0.01)
        return self.mails

    def code_in(self, mail: EmailMessage, alphabet: str = "ABCDEFGHJKMNPQRTUVWXY") -> str:
        """The code in a mail's plain-text body (checked against its HTML body too)."""
        text = mail.get_body(preferencelist=("plain",))
        html = mail.get_body(preferencelist=("html",))
        assert text is not None
        assert html is not None
        found = re.findall(rf"\b[{alphabet}]{{6}}\b", text.get_content())
        assert found, text.get_content()
        assert found[0] in html.get_content()
        return str(found[0])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on loopback and the inbox it fills."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def inbox(smtp: tuple[Inbox, int]) -> Inbox:
    return smtp[0]


@pytest.fixture
def otp_settings(
    make_settings: Callable[..., Settings], smtp: tuple[Inbox, int]
) -> Callable[..., Settings]:
    """Settings that send codes to the test SMTP server; override any field."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "sender": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp[1],
            "smtp_security": "none",
            "smtp_from": "keystile@example.test",
        }
        values.update(overrides)
        return make_settings(**values)

    return build


@pytest.fixture
def otp_client(
    make_client: Callable[[Settings], TestClient], otp_settings: Callable[..., Settings]
) -> TestClient:
    """The app on each database, mailing codes to the test SMTP server."""
    return make_client(otp_settings())
