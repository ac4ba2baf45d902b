"""What a library user plugs in: a custom brute-force hook, code generator and sender."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from keystile import Attempt, Extensions, HookProtection, Message, create_app
from keystile.clock import ManualClock
from keystile.settings import Settings
from tests.servers import LOOPBACK
from tests.strategies.otp.helpers import add_user, request_code, sign_in


class Outbox:
    """A sender kept in memory (the kind of fake allowed for what cannot run here, like SMS)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    async def aclose(self) -> None:
        """Nothing to release."""


class PhoneStyleCodes:
    """Eight digits with a dash, normalised by dropping the dash: entropy is its author's call."""

    def generate(self, length: int, characters: str) -> str:
        return "1234-5678"

    def normalize(self, code: str) -> str:
        return code.replace("-", "").strip()


def client_with(settings: Settings, clock: ManualClock, extensions: Extensions) -> TestClient:
    client = TestClient(create_app(settings, clock=clock, extensions=extensions), client=LOOPBACK)
    client.__enter__()
    return client


def test_a_hook_alone_protects_otp_and_can_deny(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """No rate limit or audit log, only a hook: the app starts, and the hook's 'no' is a 429."""
    seen: list[Attempt] = []

    def deny_blocked_domain(attempt: Attempt) -> bool:
        seen.append(attempt)
        return not attempt.identity.endswith("@blocked.example")

    settings = make_settings(otp_brute_force="")
    client = client_with(
        settings, clock, Extensions(hooks=[HookProtection(deny_blocked_domain, retry_after=30)])
    )
    try:
        assert request_code(client, "a@fine.example").status_code == 200
        blocked = request_code(client, "Someone@BLOCKED.example")
        assert blocked.status_code == 429
        assert blocked.headers["retry-after"] == "30"
        assert [(a.strategy, a.action, a.identity) for a in seen] == [
            ("otp", "request", "a@fine.example"),
            ("otp", "request", "someone@blocked.example"),
        ]
    finally:
        client.__exit__(None, None, None)


def test_a_custom_generator_and_sender_are_used(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """The generator's code is sent; its normalize() makes '12345678' match '1234-5678'."""
    settings = make_settings()
    add_user(settings, "phone@example.com")
    outbox = Outbox()
    client = client_with(
        settings, clock, Extensions(sender=outbox, otp_generator=PhoneStyleCodes())
    )
    try:
        request_code(client, "phone@example.com")
        deadline = time.monotonic() + 5  # delivery runs in the background
        while not outbox.messages and time.monotonic() < deadline:
            time.sleep(0.01)
        [message] = outbox.messages
        assert "12345678" in message.text
        assert sign_in(client, "phone@example.com", "1234-5678").status_code == 200
    finally:
        client.__exit__(None, None, None)
