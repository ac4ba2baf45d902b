"""Concurrent code requests for one identity leave exactly one live code, on every backend.

With a limiter outside the database (memory, Redis) nothing else serialises
the requests' transactions. Under PostgreSQL's READ COMMITTED each request's
"revoke the live codes" saw only committed rows, so a burst left several
live codes (and every guess then matched any of them).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from sqlalchemy import text

from keystile import testing
from keystile.clock import ManualClock
from keystile.runtime import Runtime
from keystile.settings import Settings

pytestmark = pytest.mark.anyio
EMAIL = "alice@example.com"


def live_codes(runtime: Runtime, identity: str) -> int:
    with testing.database(runtime).read() as conn:
        count: int = conn.execute(
            text(
                "SELECT count(*) FROM keystile_tokens WHERE purpose = 'otp' "
                "AND subject = :subject AND revoked_at IS NULL"
            ),
            {"subject": identity},
        ).scalar_one()
    return count


@pytest.mark.parametrize("limiter", ["memory", "redis"])
@pytest.mark.parametrize("known", [True, False], ids=["known", "unknown"])
async def test_a_burst_of_requests_leaves_one_live_code(
    make_settings: Callable[..., Settings],
    clock: ManualClock,
    request: pytest.FixtureRequest,
    limiter: str,
    known: bool,
) -> None:
    """Twenty concurrent requests (a limiter outside the database): one live code remains."""
    options: dict[str, Any] = {
        "rate_limit_backend": limiter,
        "otp_request_rate": "100/10m",
        "database_pool_size": 20,
    }
    if limiter == "redis":
        options["redis_url"] = request.getfixturevalue("redis_url")
        options["redis_key_prefix"] = f"test:{uuid.uuid4().hex}:"
    runtime = Runtime(make_settings(**options), clock=clock)
    try:
        assert runtime.otp is not None
        otp = runtime.otp
        if known:
            await runtime.create_user(EMAIL)
        for _ in range(3):  # several bursts: the race does not show every time

            async def ask() -> None:
                await otp.request(EMAIL)

            async with anyio.create_task_group() as group:
                for _ in range(20):
                    group.start_soon(ask)
            assert live_codes(runtime, EMAIL) == 1
    finally:
        await runtime.aclose()
