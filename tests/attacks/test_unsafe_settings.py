"""``keystile serve`` in production refuses every unsafe setting, as an operator would meet it.

Each case starts the real command (a subprocess, as a deployment would) with
valid production keys, a database migrated by ``keystile db upgrade`` and an
SMTP sender on loopback, then changes one thing. The process must exit
quickly with a non-zero status and name the ``KEYSTILE_`` option to change on
standard error, in one line and without a traceback. A control case starts the
same configuration unchanged, so a refusal is caused by the one setting.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, keystile_server

KEYS = {
    "KEYSTILE_SIGNING_KEYS": "sign-" + "s" * 40,
    "KEYSTILE_HASHING_KEYS": "hash-" + "h" * 40,
    "KEYSTILE_ENCRYPTION_KEYS": "seal-" + "e" * 40,
}
#: Long enough for the interpreter, the imports and the checks, far below a server's lifetime.
EXIT_WITHIN_SECONDS = 30


def safe_environment(database: Path) -> dict[str, str]:
    """A production configuration that starts: keys, a migrated SQLite file, SMTP on loopback."""
    return {
        "KEYSTILE_MODE": "production",
        **KEYS,
        "KEYSTILE_DATABASE_URL": f"sqlite:///{database}",
        "KEYSTILE_SENDER": "smtp",
        "KEYSTILE_SMTP_HOST": "127.0.0.1",
        "KEYSTILE_SMTP_PORT": "2525",
        "KEYSTILE_SMTP_SECURITY": "none",  # allowed to a loopback relay
        "KEYSTILE_SMTP_FROM": "no-reply@keystile.example",
    }


def keystile(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m keystile ARGS`` with only ``env`` as its ``KEYSTILE_*`` settings.

    The process gets its own session: if it started serving instead of
    refusing, the whole group (uvicorn's workers too) is killed at the deadline.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTILE_")}
    environment.update(env)
    process = subprocess.Popen(
        [sys.executable, "-m", "keystile", *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=EXIT_WITHIN_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError(f"`keystile {' '.join(args)}` was still running") from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once with ``keystile db upgrade`` under the safe configuration."""
    folder = tmp_path_factory.mktemp("migrated")
    path = folder / "keystile.db"
    upgraded = keystile(folder, safe_environment(path), "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    return path


@pytest.fixture
def database(tmp_path: Path, migrated: Path) -> Path:
    """This test's copy of the migrated database, owner-only like the original."""
    path = tmp_path / "keystile.db"
    shutil.copyfile(migrated, path)
    path.chmod(0o600)
    return path


def test_the_safe_configuration_starts(tmp_path: Path, database: Path) -> None:
    """The control: unchanged, the configuration every case starts from serves requests."""
    with keystile_server(tmp_path, safe_environment(database)) as base:
        assert httpx.get(f"{base}/auth/me", timeout=10).status_code == 401


WEBHOOK_SECRET = "w" * 40

UNSAFE = [
    pytest.param(
        {"KEYSTILE_PASSWORD_HASH_PRESET": "test"},
        (),
        "KEYSTILE_PASSWORD_HASH_PRESET",
        id="password-preset-test",
    ),
    pytest.param(
        {
            "KEYSTILE_SENDER": "webhook",
            "KEYSTILE_WEBHOOK_URL": "http://sms.example.com/send",
            "KEYSTILE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        },
        (),
        "KEYSTILE_WEBHOOK_URL",
        id="webhook-plain-http",
    ),
    pytest.param(
        {"KEYSTILE_SENDER": "webhook", "KEYSTILE_WEBHOOK_URL": "https://sms.example.com/send"},
        (),
        "KEYSTILE_WEBHOOK_SECRET",
        id="webhook-unsigned",
    ),
    pytest.param(
        {"KEYSTILE_SMTP_HOST": "mail.example.com", "KEYSTILE_SMTP_SECURITY": "none"},
        (),
        "KEYSTILE_SMTP_SECURITY",
        id="smtp-cleartext-to-remote-host",
    ),
    pytest.param(
        # 100 guesses a minute at 21^6 codes: about 1.7e-3 per identity per day, limit 1e-4.
        {"KEYSTILE_OTP_SIGN_IN_RATE": "100/1m"},
        (),
        "KEYSTILE_OTP_SIGN_IN_RATE",
        id="sign-in-rate-makes-guessing-likely",
    ),
    pytest.param(
        {
            "KEYSTILE_HASHING_KEYS": KEYS["KEYSTILE_SIGNING_KEYS"],
            "KEYSTILE_ENCRYPTION_KEYS": KEYS["KEYSTILE_SIGNING_KEYS"],
        },
        (),
        "KEYSTILE_HASHING_KEYS",
        id="one-key-for-every-purpose",
    ),
    pytest.param(
        {"KEYSTILE_RATE_LIMIT_BACKEND": "memory"},
        ("--workers", "2"),
        "KEYSTILE_RATE_LIMIT_BACKEND",
        id="memory-limiter-with-two-workers",
    ),
    pytest.param(
        {"group-readable": "0640"},
        (),
        "KEYSTILE_DATABASE_URL",
        id="group-readable-sqlite-file",
    ),
    pytest.param(
        {"KEYSTILE_SIGNING_KEYS": ""},
        (),
        "KEYSTILE_SIGNING_KEYS",
        id="missing-signing-key",
    ),
    pytest.param(
        {"KEYSTILE_SENDER": "console"},
        (),
        "KEYSTILE_SENDER",
        id="console-sender",
    ),
]


@pytest.mark.parametrize(("change", "args", "option"), UNSAFE)
def test_production_refuses_an_unsafe_setting(
    tmp_path: Path, database: Path, change: dict[str, str], args: tuple[str, ...], option: str
) -> None:
    """One unsafe setting: exit non-zero at once, naming the option on stderr, no traceback."""
    env = safe_environment(database)
    for name, value in change.items():
        if name == "group-readable":
            database.chmod(int(value, 8))
        elif value:
            env[name] = value
        else:
            env.pop(name)
    started = time.monotonic()
    result = keystile(tmp_path, env, "serve", "--port", str(free_port()), *args)
    assert result.returncode != 0, result.stderr
    assert time.monotonic() - started < EXIT_WITHIN_SECONDS
    assert result.stderr.startswith("error: "), result.stderr
    assert option in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for secret in (*KEYS.values(), WEBHOOK_SECRET):
        assert secret not in result.stderr
