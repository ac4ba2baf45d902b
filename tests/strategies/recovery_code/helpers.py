"""Recovery codes over HTTP: a running app, users with TOTP and codes, and the calls.

Codes are handed out the way the service does it (``RecoveryCodeService.generate``),
or stored as chosen codes (:func:`store_codes`) where a test needs particular
symbols (Crockford look-alikes). Sessions come from the real routes: a password
sign-in, then a recovery code as the second factor.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi.testclient import TestClient
from sqlalchemy import select

from keystile import testing
from keystile.clock import ManualClock
from keystile.runtime import Runtime
from keystile.store.database import DriverConnection
from keystile.store.tables import metadata
from keystile.store.users import User
from keystile.strategies.recovery_code import core
from keystile.strategies.recovery_code.service import PreparedBatch, RecoveryCodeService

PASSWORD = "correct horse battery"
ALICE = "alice@example.com"
BOB = "bob@example.com"
PREFIX = "/auth/user/recovery_code"
#: ``XXXX-XXXX-XXXX-XXXX`` in Crockford base32 (no I, L, O, U).
DISPLAY_FORM = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")


def service_of(runtime: Runtime) -> RecoveryCodeService:
    """The runtime's recovery-code service (failing the test when codes are off)."""
    assert runtime.recovery_codes is not None
    return runtime.recovery_codes


def find_user(runtime: Runtime, email: str) -> User:
    user = anyio.run(runtime.find_user, email)
    assert user is not None
    return user


def generate(runtime: Runtime, email: str) -> list[str]:
    """A new batch for ``email`` as the service makes it (display form)."""
    batch = anyio.run(service_of(runtime).generate, find_user(runtime, email))
    return list(batch.codes)


def store_codes(runtime: Runtime, email: str, normalised: list[str]) -> None:
    """Replace the user's codes by these chosen codes (normal form), as a generation would."""
    service = service_of(runtime)
    user = find_user(runtime, email)
    now = runtime.clock.now()

    batch = PreparedBatch(
        shown=tuple(normalised),
        stored=tuple(core.hashes_for_storage(service.hashing_keys, user.id, normalised)),
    )

    def work(conn: DriverConnection) -> None:
        service.store_batch_in(conn, user, batch, now)

    anyio.run(testing.database(runtime).transact, work)


def dump(runtime: Runtime) -> str:
    """Every value of every Keystile table, as one string (what a stolen database holds)."""
    parts: list[str] = []
    with testing.database(runtime).read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.extend(str(value) for value in row)
    return "\n".join(parts)


@dataclass
class App:
    """The running app, its runtime and clock, and the calls the tests make."""

    client: TestClient
    runtime: Runtime
    clock: ManualClock

    def user(self, email: str = ALICE, *, totp: bool = True) -> list[str]:
        """Create a user with a password (and, by default, TOTP and a batch of codes)."""
        anyio.run(self.runtime.password.create_user, email, PASSWORD)
        if not totp:
            return []
        anyio.run(testing.enrol_totp, self.runtime, email)
        return generate(self.runtime, email)

    def password(self, email: str = ALICE) -> dict[str, Any]:
        response = self.client.post(
            "/auth/user/password/sign_in", json={"user": {"email": email, "password": PASSWORD}}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def mfa_token(self, email: str = ALICE) -> str:
        body = self.password(email)
        assert body.get("mfa_required") is True, body
        token: str = body["mfa_token"]
        return token

    def verify(self, code: str, *, mfa_token: str | None = None, bearer: str | None = None) -> Any:
        user = {"code": code} if mfa_token is None else {"mfa_token": mfa_token, "code": code}
        return self.client.post(f"{PREFIX}/verify", json={"user": user}, headers=_auth(bearer))

    def sign_in(self, code: str, email: str = ALICE) -> str:
        """Password, then ``code`` as the second factor: the session's bearer token."""
        response = self.verify(code, mfa_token=self.mfa_token(email))
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    def generate(self, bearer: str, **kw: Any) -> Any:
        return self.client.post(f"{PREFIX}/generate", headers=_auth(bearer), **kw)

    def status(self, bearer: str) -> Any:
        return self.client.get(f"{PREFIX}/status", headers=_auth(bearer))

    def reset_mfa(self, code: str, mfa_token: str) -> Any:
        return self.client.post(
            f"{PREFIX}/reset_mfa", json={"user": {"mfa_token": mfa_token, "code": code}}
        )

    def me(self, bearer: str) -> Any:
        return self.client.get("/auth/me", headers=_auth(bearer))

    def rows(self, sql: str) -> list[dict[str, Any]]:
        return testing.rows(self.runtime, sql)

    def messages(self, count: int) -> list[str]:
        """Subject, text and HTML of every message sent, oldest first (waits for ``count``)."""
        mailbox = self.runtime.mailbox
        assert mailbox is not None
        deadline = time.monotonic() + 5
        while len(mailbox) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        entries = list(reversed(mailbox.entries()))
        assert len(entries) >= count, [entry.message.subject for entry in entries]
        return [
            f"{entry.message.subject}\n{entry.message.text}\n{entry.message.html}"
            for entry in entries
        ]


def _auth(bearer: str | None) -> dict[str, str]:
    return {} if bearer is None else {"Authorization": f"Bearer {bearer}"}


def app_of(client: TestClient, clock: ManualClock) -> App:
    """The :class:`App` of a client made by the ``make_client`` fixture."""
    runtime: Runtime = client.app.state.keystile.runtime  # type: ignore[attr-defined]
    return App(client=client, runtime=runtime, clock=clock)
