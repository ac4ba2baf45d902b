"""Helpers for tests and benchmarks of an application that uses Keystile.

Not for production code paths: they reach past the public API of
:class:`~keystile.runtime.Runtime` to set up state (a code that was "mailed")
and to look at what was stored, which tests of a sign-in need and nothing
else should.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from keystile.runtime import Runtime
from keystile.store.database import Database
from keystile.strategies.otp import core


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
