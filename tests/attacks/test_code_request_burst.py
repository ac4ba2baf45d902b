"""Attack: a burst of code requests must not leave several live codes for one identity.

Against a real ``keystile serve`` on PostgreSQL with the memory limiter
(nothing in the database serialises the requests): before the fix, 10
concurrent requests left 5-10 live codes, and every guess then matched any
of them, multiplying the odds of a brute force by as much.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from keystile.store.database import Database
from keystile.store.tables import metadata
from tests.attacks.processes import create_user
from tests.servers import keystile_server

pytestmark = pytest.mark.postgres
EMAIL = "victim@example.com"


def _empty(url: str) -> None:
    db = Database(url)
    names = ", ".join(table.name for table in metadata.sorted_tables)
    with db.write() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    db.dispose()


def _live_codes(url: str) -> int:
    db = Database(url)
    try:
        with db.read() as conn:
            count: int = conn.execute(
                text(
                    "SELECT count(*) FROM keystile_tokens WHERE purpose = 'otp' "
                    "AND subject = :email AND revoked_at IS NULL"
                ),
                {"email": EMAIL},
            ).scalar_one()
    finally:
        db.dispose()
    return count


def test_ten_concurrent_requests_leave_exactly_one_live_code(
    tmp_path: Path, postgres_url: str
) -> None:
    """10 parallel POST /auth/user/otp/request for one known user, three times: one live code."""
    _empty(postgres_url)
    env = {
        "KEYSTILE_DATABASE_URL": postgres_url,
        "KEYSTILE_PASSWORD_HASH_PRESET": "test",
        "KEYSTILE_RATE_LIMIT_BACKEND": "memory",
        "KEYSTILE_OTP_REQUEST_RATE": "100/15m",
    }
    create_user(tmp_path, env, EMAIL, "not-used-here")
    with keystile_server(tmp_path, env) as base, httpx.Client(timeout=30) as client:

        def ask(_: int) -> int:
            response = client.post(f"{base}/auth/user/otp/request", json={"user": {"email": EMAIL}})
            return response.status_code

        for _burst in range(3):
            with ThreadPoolExecutor(max_workers=10) as pool:
                statuses = list(pool.map(ask, range(10)))
            assert statuses == [200] * 10
            assert _live_codes(postgres_url) == 1
