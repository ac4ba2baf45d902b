"""Helpers for tests and benchmarks of an application that uses Keystile.

Not for production code paths: they reach past the public API of
:class:`~keystile.runtime.Runtime` to set up state (a code that was "mailed")
and to look at what was stored, which tests of a sign-in need and nothing
else should.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import text

from keystile.flows.sessions import Authenticated
from keystile.flows.sign_in import SecondFactorRequired
from keystile.runtime import Runtime
from keystile.store import totp as authenticators
from keystile.store.database import Database, DriverConnection
from keystile.strategies.otp import core
from keystile.strategies.totp.core import new_secret
from keystile.strategies.totp.sealing import seal_secret


def database(runtime: Runtime) -> Database:
    """The runtime's database handle."""
    return runtime._db


def rows(runtime: Runtime, sql: str) -> list[dict[str, Any]]:
    """The rows of a read-only ``sql`` query on the runtime's database, as dicts."""
    with runtime._db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(text(sql))]


async def issue_code(runtime: Runtime, email: str) -> str:
    """Store a fresh one-time code for ``email`` as a code request does, and return it.

    Nothing is sent and nothing is counted: for tests and benchmarks that need
    a valid code without a mailbox.

    Raises:
        LookupError: the OTP strategy is turned off.
    """
    if runtime.otp is None:
        raise LookupError("the otp strategy is not enabled")
    config = runtime.otp.config
    code = core.new_code(config)
    now = runtime.clock.now()
    await runtime._tokens.replace(
        jti=core.code_token_id(runtime._hashing_keys, email, code),
        purpose="otp",
        subject=email,
        now=now,
        expires_at=now + config.lifetime,
    )
    return code


async def enrol_totp(runtime: Runtime, email: str, *, secret: bytes | None = None) -> bytes:
    """Give the user ``email`` an active TOTP authenticator (SHA1, 6 digits, 30 s); its secret.

    As a confirmed setup leaves it, with no step accepted yet. For tests that
    need a user with a second factor without going through the setup routes.

    Raises:
        LookupError: no such user.
    """
    user = await runtime.find_user(email)
    if user is None:
        raise LookupError(email)
    secret = secret or new_secret()
    sealed = seal_secret(runtime.settings.ring("encryption_keys"), secret, user_id=user.id)
    now = runtime.clock.now()
    authenticator_id = secrets.token_urlsafe(16)

    def work(conn: DriverConnection) -> None:
        authenticators.insert_pending(
            conn,
            authenticator_id=authenticator_id,
            user_id=user.id,
            sealed_secret=sealed.value,
            key_id=sealed.key_id,
            algorithm="SHA1",
            digits=6,
            period=30,
            now=now,
        )
        if not authenticators.activate(conn, authenticator_id, user.id, -1, now):
            raise RuntimeError("the new authenticator could not be activated")

    await runtime._db.transact(work)
    return secret


def signed_in(result: Authenticated | SecondFactorRequired) -> Authenticated:
    """``result`` as a session, failing the test if the sign-in still owes a second factor."""
    if not isinstance(result, Authenticated):
        raise AssertionError(f"expected a session, got a second-factor challenge {result!r}")
    return result
