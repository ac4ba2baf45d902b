"""Two real `keystile serve` processes: limits and single use hold across them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.servers import keystile_server

EMAIL = "victim@example.com"


def test_two_processes_on_redis_accept_no_more_than_the_limit_and_one_use(
    tmp_path: Path, redis_url: str
) -> None:
    """20 parallel sign-ins with one valid code, spread over two processes sharing Redis and
    one SQLite file: exactly one session, exactly five attempts judged, fifteen refused 429."""
    env = {
        "KEYSTILE_PASSWORD_HASH_PRESET": "test",
        "KEYSTILE_RATE_LIMIT_BACKEND": "redis",
        "KEYSTILE_REDIS_URL": redis_url,
        "KEYSTILE_REDIS_KEY_PREFIX": f"processes-{os.getpid()}:",
    }
    created = subprocess.run(
        [sys.executable, "-m", "keystile", "user", "create", EMAIL, "--password-stdin"],
        cwd=tmp_path,
        input="not-used-here\n",
        capture_output=True,
        text=True,
        check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("KEYSTILE_")}, **env},
    )
    assert created.returncode == 0, created.stderr
    with keystile_server(tmp_path, env) as first, keystile_server(tmp_path, env) as second:
        assert httpx.post(
            f"{first}/auth/user/otp/request", json={"user": {"email": EMAIL}}
        ).json() == {"status": "ok"}
        deadline = time.monotonic() + 10
        while not (mail := httpx.get(f"{first}/dev/mailbox.json").json()):
            assert time.monotonic() < deadline, "the code never reached the dev mailbox"
            time.sleep(0.05)
        code = next(w for w in mail[0]["text"].split() if len(w) == 6 and w.isupper())

        def attempt(index: int) -> int:
            base = first if index % 2 else second
            response = httpx.post(
                f"{base}/auth/user/otp/sign_in",
                json={"user": {"email": EMAIL, "otp": code}},
                timeout=30,
            )
            return response.status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(attempt, range(20)))
    assert statuses.count(200) == 1, statuses
    assert statuses.count(401) == 4, statuses
    assert statuses.count(429) == 15, statuses
