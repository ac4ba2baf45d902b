"""40 concurrent password sign-ins against a real ``keystile serve``: memory bounded by the cap.

The attack: send many password sign-ins at once with random emails, so every
one burns an Argon2 hash (the dummy hash stands in for the unknown account).
Before the fix each ran in its own thread of the shared pool: 40 at once
took 40 x 64 MiB with ``rfc9106_low_memory``. Now at most the cap
(``KEYSTILE_PASSWORD_HASH_MEMORY_MB`` 256 / 64 MiB = 4) hash at once; the rest
queue and every one is still answered ``401 authentication_failed``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from keystile.crypto.passwords import PRESETS, hash_concurrency
from tests.servers import keystile_server

SIGN_INS = 40
MIB_IN_KB = 1024
HASH_KB = PRESETS["rfc9106_low_memory"].memory_cost_kib
CAP = hash_concurrency(PRESETS["rfc9106_low_memory"], concurrency=0, memory_budget_mib=256)
#: Room for the interpreter's own growth under 40 open requests (thread stacks, buffers).
MARGIN_KB = 96 * MIB_IN_KB


def _server_status(port: int) -> dict[str, int]:
    """The kB fields of /proc/<pid>/status of the process serving ``port``."""
    for pid in Path("/proc").iterdir():
        if not pid.name.isdigit():
            continue
        try:
            cmdline = (pid / "cmdline").read_bytes().split(b"\0")
            status = (pid / "status").read_text()
        except OSError:
            continue
        if b"serve" in cmdline and str(port).encode() in cmdline:
            fields = {}
            for line in status.splitlines():
                name, _, value = line.partition(":")
                if value.strip().endswith(" kB"):
                    fields[name] = int(value.split()[0])
            return fields
    raise AssertionError(f"no server process on port {port}")


@pytest.mark.anyio
async def test_concurrent_argon2_sign_ins_queue_within_the_memory_cap(tmp_path: Path) -> None:
    """Every sign-in answers 401; the server's peak RSS stays within baseline + cap x 64 MiB."""
    assert CAP == 4
    environment = {
        "KEYSTILE_MODE": "development",
        "KEYSTILE_PASSWORD_HASH_PRESET": "rfc9106_low_memory",
        # One address sends all 40: raise its limit so every sign-in reaches Argon2.
        "KEYSTILE_PASSWORD_SIGN_IN_ADDRESS_RATE": "1000/10m",
    }
    with keystile_server(tmp_path, environment) as base:
        port = urlsplit(base).port
        assert port is not None
        baseline_kb = _server_status(port)["VmRSS"]
        answers: list[httpx.Response] = []

        async def sign_in(client: httpx.AsyncClient) -> None:
            email = f"{secrets.token_hex(8)}@example.com"
            answers.append(
                await client.post(
                    f"{base}/auth/user/password/sign_in",
                    json={"user": {"email": email, "password": secrets.token_urlsafe(12)}},
                )
            )

        limits = httpx.Limits(max_connections=SIGN_INS)
        async with (
            httpx.AsyncClient(limits=limits, timeout=300) as client,
            anyio.create_task_group() as tasks,
        ):
            for _ in range(SIGN_INS):
                tasks.start_soon(sign_in, client)
        peak_kb = _server_status(port)["VmHWM"]
    assert [answer.status_code for answer in answers] == [401] * SIGN_INS
    assert {answer.json()["error"] for answer in answers} == {"authentication_failed"}
    ceiling_kb = baseline_kb + CAP * HASH_KB + MARGIN_KB
    assert peak_kb < ceiling_kb, (baseline_kb, peak_kb, ceiling_kb)
    assert ceiling_kb < baseline_kb + SIGN_INS * HASH_KB // 4  # far under the unbounded case
