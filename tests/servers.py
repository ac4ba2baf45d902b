"""Real servers for the test session: PostgreSQL and Redis on loopback, started and stopped here.

When a server cannot be started, tests that need it fail in CI (``CI=true``)
and are skipped elsewhere, with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from keystile.testing_server import free_port as free_port  # re-exported for the tests
from keystile.testing_server import serving


def _pg_bin() -> Path:
    if "KEYSTILE_TEST_PG_BIN" in os.environ:
        return Path(os.environ["KEYSTILE_TEST_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()

#: A TestClient peer on this machine (Starlette's default, "testclient", is no address).
LOOPBACK = ("127.0.0.1", 50000)


def unavailable(reason: str) -> None:
    """Fail in CI, skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"required test server unavailable in CI: {reason}")
    pytest.skip(reason)


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        unavailable(f"{' '.join(args[:6])} failed: {result.stderr.strip()[-500:]}")


def _as_postgres(args: list[str]) -> list[str]:
    # initdb refuses to run as root; run the server as the postgres user then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster; yields the URL of an empty database.

    The cluster lives in its own folder under the system temp dir, because
    pytest's tmp folders are private to the user running the tests and the
    server may run as ``postgres``.
    """
    if not (PG_BIN / "initdb").exists():
        unavailable(f"PostgreSQL binaries not found in {PG_BIN}")
    base = Path(tempfile.mkdtemp(prefix="keystile-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, port = base / "data", free_port()
    _run(
        _as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        )
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=200"
    )
    _run(
        _as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(base / "server.log"),
                "-w",
                "-o",
                options,
                "start",
            ]
        )
    )
    try:
        _run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "-c",
                "create database keystile_test",
            ]
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/keystile_test"
    finally:
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            ),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway Redis on loopback; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server not installed")
        raise AssertionError("unreachable")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    unavailable("redis-server did not start")
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def keystile_server(cwd: Path, env: dict[str, str], *args: str) -> Iterator[str]:
    """``keystile serve`` as a real process in ``cwd``; yields its base URL.

    ``env`` is added to the environment after every inherited ``KEYSTILE_*``
    variable is dropped, so only what the test sets applies. Its output is in
    ``cwd/server-PORT.log``. Ready is any answer to ``GET /auth/me`` (401 without a
    session), which every mode gives, unlike ``/openapi.json`` (off in production).
    Starting, waiting and stopping are :func:`keystile.testing_server.serving`, the
    same as the benchmarks' server.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTILE_")}
    environment.update(env)
    with serving(
        lambda port: [sys.executable, "-m", "keystile", "serve", "--port", str(port), *args],
        cwd=cwd,
        env=environment,
        ready_path="/auth/me",
        timeout=30,
    ) as server:
        yield server.base_url
