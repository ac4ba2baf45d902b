"""Attack: pre-register a victim's address with the attacker's password, then wait.

Against a real ``keystile serve`` with password registration on, mailing
through a real SMTP server (aiosmtpd on loopback). Before the fix (issue 7,
item 7) ``register`` created the account with the attacker's password at once
(201 and a session) and answered 409 for an existing address; when the victim
later signed in by emailed code into that same account, the attacker's
password still worked. Now registration keeps the password pending until the
code mailed to the address confirms it, and answers the same for every
address.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.attacks.processes import create_user
from tests.servers import free_port, keystile_server
from tests.strategies.otp.conftest import Inbox

VICTIM = "victim@example.com"
FRESH = "fresh@example.com"
EXISTING = "existing@example.com"
ATTACKER_PASSWORD = "attackers-password-1"
EXISTING_PASSWORD = "existing-users-own-pw"
#: Registrations and confirmations per address (KEYSTILE_PASSWORD_SIGN_IN_RATE).
REGISTER_LIMIT = 5
CONFIRMATION_CODE = re.compile(r"\b[ABCDEFGHJKMNPQRTUVWXY]{8}\b")


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on loopback; the inbox it fills stands for every mailbox."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def server(tmp_path: Path, smtp: tuple[Inbox, int]) -> Iterator[str]:
    """``keystile serve`` with password and code registration on, mailing to ``smtp``;
    ``EXISTING`` already has an account (created by ``keystile user create``)."""
    env = {
        "KEYSTILE_MODE": "development",
        "KEYSTILE_PASSWORD_HASH_PRESET": "test",
        "KEYSTILE_PASSWORD_REGISTRATION_ENABLED": "true",
        "KEYSTILE_PASSWORD_SIGN_IN_RATE": f"{REGISTER_LIMIT}/10m",
        "KEYSTILE_OTP_REGISTRATION_ENABLED": "true",
        "KEYSTILE_SENDER": "smtp",
        "KEYSTILE_SMTP_HOST": "127.0.0.1",
        "KEYSTILE_SMTP_PORT": str(smtp[1]),
        "KEYSTILE_SMTP_SECURITY": "none",
        "KEYSTILE_SMTP_FROM": "keystile@example.com",
    }
    create_user(tmp_path, env, EXISTING, EXISTING_PASSWORD)
    with keystile_server(tmp_path, env) as base:
        yield base


def _register(client: httpx.Client, email: str, password: str) -> httpx.Response:
    """``POST /auth/user/password/register`` as anyone on the internet may."""
    return client.post(
        "/auth/user/password/register", json={"user": {"email": email, "password": password}}
    )


def _password_sign_in(client: httpx.Client, email: str, password: str) -> httpx.Response:
    """``POST /auth/user/password/sign_in``."""
    return client.post(
        "/auth/user/password/sign_in", json={"user": {"email": email, "password": password}}
    )


def _mail(inbox: Inbox, to: str, subject: str, timeout: float = 10.0) -> EmailMessage:
    """The first mail to ``to`` whose subject starts with ``subject``, once it has arrived."""
    deadline = time.monotonic() + timeout
    while True:
        for mail in list(inbox.mails):
            if mail["To"] == to and str(mail["Subject"]).startswith(subject):
                return mail
        assert time.monotonic() < deadline, f"no mail to {to} about {subject!r}"
        time.sleep(0.02)


def _confirmation_code(mail: EmailMessage) -> str:
    """The 8-symbol registration code in a confirmation mail's plain-text body."""
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    found = CONFIRMATION_CODE.findall(body.get_content())
    assert found, body.get_content()
    return str(found[0])


def _without_date(response: httpx.Response) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
    """Everything of an answer a caller sees, but its ``Date`` header."""
    headers = tuple(sorted((k, v) for k, v in response.headers.items() if k.lower() != "date"))
    return response.status_code, response.content, headers


def test_registration_answers_alike_for_new_and_existing_addresses(
    server: str, smtp: tuple[Inbox, int]
) -> None:
    """Registering the victim's address, a fresh one and an existing account's: the same
    200 {"status":"ok"}, byte for byte, headers too. Each address is mailed its own
    confirmation; the existing account keeps its password and the attacker's does not work."""
    inbox = smtp[0]
    with httpx.Client(base_url=server, timeout=30) as client:
        answers = [
            _register(client, email, ATTACKER_PASSWORD) for email in (VICTIM, FRESH, EXISTING)
        ]
        assert [answer.status_code for answer in answers] == [200, 200, 200]
        assert answers[0].content == b'{"status":"ok"}'
        assert len({_without_date(answer) for answer in answers}) == 1, answers
        for email in (VICTIM, FRESH, EXISTING):
            _mail(inbox, email, "Confirm your")
        assert sorted(str(mail["To"]) for mail in inbox.mails) == sorted((VICTIM, FRESH, EXISTING))

        assert _password_sign_in(client, EXISTING, EXISTING_PASSWORD).status_code == 200
        overwritten = _password_sign_in(client, EXISTING, ATTACKER_PASSWORD)
        assert overwritten.status_code == 401
        assert overwritten.json()["error"] == "authentication_failed"


def test_a_pre_registered_password_never_opens_the_victims_account(
    server: str, smtp: tuple[Inbox, int]
) -> None:
    """The attacker registers the victim's address; the victim signs in by emailed code
    and gets a session; the attacker's password is refused before and after; guessing the
    confirmation code mailed to the victim answers 401, then 429 at the registration limit."""
    inbox = smtp[0]
    with httpx.Client(base_url=server, timeout=30) as client:
        registered = _register(client, VICTIM, ATTACKER_PASSWORD)
        assert registered.status_code == 200
        assert registered.content == b'{"status":"ok"}'
        confirmation = _confirmation_code(_mail(inbox, VICTIM, "Confirm your"))
        early = _password_sign_in(client, VICTIM, ATTACKER_PASSWORD)
        assert early.status_code == 401
        assert early.json()["error"] == "authentication_failed"

        # The victim, who never registered, signs in by emailed code.
        asked = client.post("/auth/user/otp/request", json={"user": {"email": VICTIM}})
        assert asked.status_code == 200
        code = inbox.code_in(_mail(inbox, VICTIM, "Your "))
        signed_in = client.post(
            "/auth/user/otp/sign_in", json={"user": {"email": VICTIM, "otp": code}}
        )
        assert signed_in.status_code == 200, signed_in.text
        bearer = {"Authorization": f"Bearer {signed_in.json()['token']}"}
        me = client.get("/auth/me", headers=bearer)
        assert me.status_code == 200
        assert me.json()["user"]["email"] == VICTIM

        # The attacker's password does not open the account the victim now uses.
        late = _password_sign_in(client, VICTIM, ATTACKER_PASSWORD)
        assert late.status_code == 401
        assert late.json()["error"] == "authentication_failed"

        # Nor can the attacker confirm the pending password without the victim's mail.
        guess = "".join(reversed(confirmation))
        guess = guess if guess != confirmation else "ABCDEFGH"
        statuses = []
        for _ in range(REGISTER_LIMIT):  # the registration above was the first of the limit
            answer = client.post(
                "/auth/user/password/confirm", json={"user": {"email": VICTIM, "code": guess}}
            )
            statuses.append((answer.status_code, answer.json()["error"]))
        assert statuses == [(401, "authentication_failed")] * (REGISTER_LIMIT - 1) + [
            (429, "too_many_attempts")
        ]
        assert int(answer.headers["retry-after"]) >= 1
        assert _password_sign_in(client, VICTIM, ATTACKER_PASSWORD).status_code == 401
        assert client.get("/auth/me", headers=bearer).status_code == 200
