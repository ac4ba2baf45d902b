"""The development mailbox: the console sender's messages, in development mode only."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from keystile.settings import Settings
from keystile.web.app import create_app
from tests.servers import LOOPBACK
from tests.strategies.otp.helpers import add_user


def test_codes_requested_in_development_appear_in_the_mailbox(
    client: TestClient, settings: Settings
) -> None:
    """Default sender (console): the code shows on /dev/mailbox.json and signs in."""
    add_user(settings, "dev@example.com")
    client.post("/auth/user/otp/request", json={"user": {"email": "dev@example.com"}})
    deadline = time.monotonic() + 5
    while not (entries := client.get("/dev/mailbox.json").json()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    [entry] = entries
    assert entry["to"] == "dev@example.com"
    code = next(w for w in entry["text"].split() if len(w) == 6 and w.isalpha() and w.isupper())
    signed_in = client.post(
        "/auth/user/otp/sign_in", json={"user": {"email": "dev@example.com", "otp": code}}
    )
    assert signed_in.status_code == 200
    assert client.get("/dev/mailbox").status_code == 200


def test_no_mailbox_in_production(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """Production mode (with a real sender) has no /dev routes."""
    client = make_client(
        make_settings(mode="production", sender="smtp", password_hash_preset="rfc9106_low_memory")
    )
    assert client.get("/dev/mailbox").status_code == 404
    assert client.get("/dev/mailbox.json").status_code == 404


@pytest.mark.parametrize(
    ("peer", "headers"),
    [
        (("10.0.0.5", 40000), {}),
        (("203.0.113.9", 40000), {}),
        (("2001:db8::1", 40000), {}),
        (("testclient", 50000), {}),
        (("127.0.0.1", 40000), {"X-Forwarded-For": "203.0.113.9"}),
        (("127.0.0.1", 40000), {"Forwarded": "for=203.0.113.9"}),
        (("::1", 40000), {"X-Real-IP": "203.0.113.9"}),
    ],
)
def test_the_mailbox_answers_only_callers_on_this_machine(
    settings: Settings, peer: tuple[str, int], headers: dict[str, str]
) -> None:
    """A remote peer, or a loopback one relaying a stranger, gets 404 and no code."""
    add_user(settings, "dev@example.com")
    app = create_app(settings)
    with TestClient(app, client=LOOPBACK) as local:
        local.post("/auth/user/otp/request", json={"user": {"email": "dev@example.com"}})
        deadline = time.monotonic() + 5
        while not local.get("/dev/mailbox.json").json():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with TestClient(app, client=peer) as remote:
            for path in ("/dev/mailbox", "/dev/mailbox.json"):
                response = remote.get(path, headers=headers)
                assert response.status_code == 404, (peer, headers, path)
                assert response.json()["error"] == "not_found"
                assert "dev@example.com" not in response.text
