"""Crafted identities against a real ``keystile serve`` mailing codes through real SMTP.

The attack: ask for a sign-in code with an "address" that a mail library reads
as someone else, or as several people, e.g. ``<attacker@evil.com>ceo@corp.com``
(mailed to the attacker) or ``a@x.io,b@y.io,c@z.io`` (one request, three
mails). With OTP registration on, a code goes out even for an unknown identity,
so before the fix the attacker received a code. Each must be ``400
invalid_request`` and no mail may reach the SMTP server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.servers import free_port, keystile_server

CRAFTED = [
    "<attacker@evil.com>ceo@corp.com",
    "a@x.io,b@y.io,c@z.io",
    "ceo@corp.com, attacker@evil.com",
    "ceo@corp.com;attacker@evil.com",
    '"quoted"@x.io',
    '"attacker@evil.com"@corp.com',
    "Name <a@b.io>",
    "CEO <ceo@corp.com>, attacker@evil.com",
    "a@b.io (comment)",
    "(attacker@evil.com)ceo@corp.com",
    "ceo@[127.0.0.1]",
]
CONTROL = "carol@example.com"


@dataclass
class Envelopes:
    """Every ``RCPT TO`` the server was asked about and every delivered envelope."""

    rcpt_seen: list[str] = field(default_factory=list)
    delivered: list[list[str]] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.rcpt_seen.append(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.delivered.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Envelopes, int]]:
    """A real SMTP server on loopback that records envelopes."""
    envelopes, port = Envelopes(), free_port()
    controller = Controller(envelopes, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield envelopes, port
    finally:
        controller.stop()


@pytest.fixture
def server(tmp_path: Path, smtp: tuple[Envelopes, int]) -> Iterator[str]:
    """``keystile serve`` mailing codes, even to new identities, to the test SMTP server."""
    env = {
        "KEYSTILE_PASSWORD_HASH_PRESET": "test",
        "KEYSTILE_SENDER": "smtp",
        "KEYSTILE_SMTP_HOST": "127.0.0.1",
        "KEYSTILE_SMTP_PORT": str(smtp[1]),
        "KEYSTILE_SMTP_SECURITY": "none",
        "KEYSTILE_SMTP_FROM": "keystile@example.com",
        "KEYSTILE_OTP_REGISTRATION_ENABLED": "true",
        "KEYSTILE_OTP_REQUEST_RATE": "1000/1m",
    }
    with keystile_server(tmp_path, env) as base:
        yield base


def test_crafted_addresses_are_refused_and_nothing_is_mailed(
    server: str, smtp: tuple[Envelopes, int]
) -> None:
    """Every crafted address: 400 invalid_request naming ``user.email``; the SMTP server is
    asked about no recipient. A plain address sent afterwards arrives alone, to itself."""
    envelopes = smtp[0]
    with httpx.Client(base_url=server, timeout=30) as client:
        for raw in CRAFTED:
            response = client.post("/auth/user/otp/request", json={"user": {"email": raw}})
            assert response.status_code == 400, (raw, response.text)
            body = response.json()
            assert body["error"] == "invalid_request", raw
            assert set(body["fields"]) == {"user.email"}, raw
        # The control proves mail flows, and that the crafted ones had their chance to.
        control = client.post("/auth/user/otp/request", json={"user": {"email": CONTROL}})
        assert control.json() == {"status": "ok"}
    deadline = time.monotonic() + 10
    while not envelopes.delivered:
        assert time.monotonic() < deadline, "the control code never reached the SMTP server"
        time.sleep(0.02)
    time.sleep(0.5)  # room for any late mail from the crafted requests
    assert envelopes.delivered == [[CONTROL]]
    assert envelopes.rcpt_seen == [CONTROL]


def test_an_overlong_address_is_a_400_not_a_500(server: str) -> None:
    """Over 320 characters is refused by the schema with the same invalid_request answer."""
    raw = "a" * 310 + "@example.com"
    response = httpx.post(
        f"{server}/auth/user/otp/request", json={"user": {"email": raw}}, timeout=30
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "user.email" in response.json()["fields"]
