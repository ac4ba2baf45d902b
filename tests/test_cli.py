"""The ``keystile`` command, run as a real process, and ``keystile serve`` end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import select

from keystile.crypto.keyring import KeyRing
from keystile.store import recovery_codes, totp
from keystile.store.database import Database
from keystile.store.tables import audit_events, totp_authenticators
from keystile.store.tables import recovery_codes as recovery_code_rows
from keystile.store.users import User, UserStore
from keystile.strategies.totp.core import new_secret
from keystile.strategies.totp.sealing import seal_secret, unseal_secret
from tests.servers import keystile_server

KEYSTILE = [sys.executable, "-m", "keystile"]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working folder: the embedded default puts keystile.db and keys here."""
    return tmp_path


def run(workdir: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTILE_")}
    environment.update({"KEYSTILE_PASSWORD_HASH_PRESET": "test", **env})
    return subprocess.run(
        [*KEYSTILE, *args],
        cwd=workdir,
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def test_user_create_reads_the_password_from_stdin_and_lists(workdir: Path) -> None:
    """`user create` stores a normalised user; `user list` shows it; no password printed."""
    created = run(workdir, "user", "create", "Alice@Example.COM", stdin="s3cret-passw0rd\n")
    assert created.returncode == 0, created.stderr
    assert "created alice@example.com" in created.stdout
    listed = run(workdir, "user", "list")
    assert listed.returncode == 0
    assert "alice@example.com" in listed.stdout
    assert "s3cret" not in created.stdout + created.stderr + listed.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("user", "create", "not-an-email"), {}, "error: The email is not valid."),
        (
            ("user", "list"),
            {"KEYSTILE_MODE": "production"},
            "error: KEYSTILE_SIGNING_KEYS is not set",
        ),
        (("user", "list"), {"KEYSTILE_DATABASE_URL": "mysql://x"}, "error: KEYSTILE_DATABASE_URL"),
        (("--config", "missing.toml", "user", "list"), {}, "error: configuration file"),
        (
            ("serve", "--workers", "2"),
            {"KEYSTILE_RATE_LIMIT_BACKEND": "memory"},
            "error: KEYSTILE_RATE_LIMIT_BACKEND=memory keeps limits per process",
        ),
    ],
)
def test_errors_are_one_line_without_traceback(
    workdir: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    """A failing command prints one clear line on stderr and exits non-zero."""
    result = run(workdir, *args, stdin="password123\n", **env)
    assert result.returncode != 0
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_duplicate_user_is_refused(workdir: Path) -> None:
    """Creating the same email twice fails cleanly."""
    assert run(workdir, "user", "create", "a@example.com", stdin="password123\n").returncode == 0
    again = run(workdir, "user", "create", "A@example.com", stdin="password123\n")
    assert again.returncode == 1
    assert again.stderr.strip() == "error: This identity cannot be registered."


def test_db_purge_reports_what_it_deleted(workdir: Path) -> None:
    """`db purge` runs on a fresh database and says what it removed."""
    result = run(workdir, "db", "purge", "--audit-days", "30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deleted 0 expired tokens, 0 rate-limit hits, 0 audit events"


def test_production_refuses_an_unmigrated_database(workdir: Path) -> None:
    """In production, the schema is never changed implicitly: run `db upgrade` first."""
    keys = {
        "KEYSTILE_MODE": "production",
        "KEYSTILE_SIGNING_KEYS": "s" * 40,
        "KEYSTILE_HASHING_KEYS": "h" * 40,
        "KEYSTILE_ENCRYPTION_KEYS": "e" * 40,
        "KEYSTILE_SENDER": "smtp",
        "KEYSTILE_PASSWORD_HASH_PRESET": "rfc9106_low_memory",
    }
    refused = run(workdir, "user", "list", **keys)
    assert refused.returncode == 1
    assert "keystile db upgrade" in refused.stderr
    assert run(workdir, "db", "upgrade", **keys).returncode == 0
    assert run(workdir, "user", "list", **keys).stdout.strip() == "no users"


@pytest.fixture
def server(workdir: Path) -> Iterator[str]:
    """`keystile serve` on a free port in the working folder; stopped afterwards."""
    with keystile_server(workdir, {"KEYSTILE_PASSWORD_HASH_PRESET": "test"}) as base:
        yield base


def test_serve_answers_a_password_sign_in_for_a_cli_created_user(
    workdir: Path, server: str
) -> None:
    """The must-show path: user create, serve, sign in, /auth/me, sign_out, /auth/me refused."""
    assert (
        run(workdir, "user", "create", "bob@example.com", stdin="hunter2hunter2\n").returncode == 0
    )
    signed_in = httpx.post(
        f"{server}/auth/user/password/sign_in",
        json={"user": {"email": "Bob@Example.com", "password": "hunter2hunter2"}},
    )
    assert signed_in.status_code == 200
    assert signed_in.headers["cache-control"] == "no-store"
    auth = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    assert httpx.get(f"{server}/auth/me", headers=auth).json()["user"]["email"] == "bob@example.com"
    assert httpx.post(f"{server}/auth/sign_out", headers=auth).status_code == 204
    assert httpx.get(f"{server}/auth/me", headers=auth).status_code == 401
    assert (workdir / "keystile.db").exists()
    assert (workdir / ".keystile-keys.json").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::", "example.com"])  # noqa: S104
def test_development_mode_refuses_a_non_loopback_address(tmp_path: Path, host: str) -> None:
    """`keystile serve --host 0.0.0.0` in development exits non-zero naming the way out."""
    result = subprocess.run(
        [sys.executable, "-m", "keystile", "serve", "--host", host, "--port", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "KEYSTILE_MODE": "development"},
    )
    assert result.returncode != 0
    assert "--allow-remote-development" in result.stderr
    assert "KEYSTILE_MODE=production" in result.stderr


OLD_KEY, NEW_KEY = "o" * 40, "n" * 40


def _enrol(workdir: Path, count: int) -> dict[str, tuple[uuid.UUID, bytes]]:
    """``count`` users created by the CLI, each with a TOTP authenticator sealed under OLD_KEY."""
    env = {"KEYSTILE_ENCRYPTION_KEYS": OLD_KEY}
    for index in range(count):
        created = run(
            workdir, "user", "create", f"u{index}@example.com", stdin="pw-123456\n", **env
        )
        assert created.returncode == 0, created.stderr
    db = Database(f"sqlite:///{workdir / 'keystile.db'}")
    enrolled: dict[str, tuple[uuid.UUID, bytes]] = {}
    try:

        async def every_user() -> list[User]:
            return await UserStore(db).list(limit=100, offset=0)

        for user in anyio.run(every_user):
            secret = new_secret()
            sealed = seal_secret(KeyRing([OLD_KEY]), secret, user_id=user.id)
            with db.driver_write() as conn:
                totp.insert_pending(
                    conn,
                    authenticator_id=f"totp-{user.email}",
                    user_id=user.id,
                    sealed_secret=sealed.value,
                    key_id=sealed.key_id,
                    algorithm="SHA1",
                    digits=6,
                    period=30,
                    now=user.created_at,
                )
            enrolled[f"totp-{user.email}"] = (user.id, secret)
    finally:
        db.dispose()
    return enrolled


def _stored(workdir: Path) -> dict[str, tuple[str, str]]:
    db = Database(f"sqlite:///{workdir / 'keystile.db'}")
    table = totp_authenticators
    try:
        with db.read() as conn:
            rows = conn.execute(select(table.c.id, table.c.sealed_secret, table.c.key_id)).all()
    finally:
        db.dispose()
    return {row.id: (row.sealed_secret, row.key_id) for row in rows}


def test_keys_rotate_moves_every_totp_secret_to_the_newest_key(workdir: Path) -> None:
    """New key first: every secret moves (in batches) and still opens once the old key goes."""
    enrolled = _enrol(workdir, 3)
    rotated = run(
        workdir,
        "keys",
        "rotate",
        "--batch-size",
        "2",
        KEYSTILE_ENCRYPTION_KEYS=f"{NEW_KEY},{OLD_KEY}",
    )
    assert rotated.returncode == 0, rotated.stderr
    new_only = KeyRing([NEW_KEY])
    kid = new_only.current.kid
    assert rotated.stdout.strip() == f"re-encrypted 3 TOTP secret(s) under key {kid}"
    stored = _stored(workdir)
    assert set(stored) == set(enrolled)
    for authenticator_id, (sealed, key_id) in stored.items():
        user_id, secret = enrolled[authenticator_id]
        assert key_id == kid
        assert unseal_secret(new_only, sealed, user_id=user_id) == secret
    again = run(workdir, "keys", "rotate", KEYSTILE_ENCRYPTION_KEYS=NEW_KEY)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"re-encrypted 0 TOTP secret(s) under key {kid}"


def test_keys_rotate_without_the_old_key_names_what_it_cannot_open(workdir: Path) -> None:
    """Old key dropped too early: nothing is touched, one error line says to put it back."""
    enrolled = _enrol(workdir, 2)
    before = _stored(workdir)
    result = run(workdir, "keys", "rotate", KEYSTILE_ENCRYPTION_KEYS=NEW_KEY)
    assert result.returncode == 1
    old_kid = KeyRing([OLD_KEY]).current.kid
    assert result.stderr.strip() == (
        f"error: KEYSTILE_ENCRYPTION_KEYS: 2 TOTP secret(s) sealed under key(s) {old_kid} open "
        "with no listed key; put the old key back after the new one and run "
        "`keystile keys rotate` again"
    )
    assert _stored(workdir) == before
    assert len(enrolled) == 2


MFA_EMAIL = "mfa@example.com"


def _give_second_factor(workdir: Path, email: str) -> uuid.UUID:
    """An active TOTP authenticator and a batch of two recovery codes (one used) for ``email``."""
    db = Database(f"sqlite:///{workdir / 'keystile.db'}")
    try:

        async def find() -> User | None:
            return await UserStore(db).get_by_email(email)

        user = anyio.run(find)
        assert user is not None
        now = user.created_at
        sealed = seal_secret(KeyRing([OLD_KEY]), new_secret(), user_id=user.id)
        with db.driver_write() as conn:
            totp.insert_pending(
                conn,
                authenticator_id="totp-mfa",
                user_id=user.id,
                sealed_secret=sealed.value,
                key_id=sealed.key_id,
                algorithm="SHA1",
                digits=6,
                period=30,
                now=now,
            )
            assert totp.activate(conn, "totp-mfa", user.id, step=1, now=now)
            recovery_codes.replace_batch(
                conn, user.id, [("hash-one", "k1"), ("hash-two", "k1")], "batch-1", now
            )
            assert recovery_codes.consume(conn, user.id, ["hash-one"], now)
        return user.id
    finally:
        db.dispose()


def _mfa_rows(workdir: Path, user_id: uuid.UUID) -> tuple[int, int, list[tuple[str, str, bool]]]:
    """The user's authenticators and recovery codes, and the audit log's (strategy, action,
    success) for the user."""
    db = Database(f"sqlite:///{workdir / 'keystile.db'}")
    try:
        with db.read() as conn:
            authenticators = conn.execute(
                select(totp_authenticators.c.id).where(totp_authenticators.c.user_id == user_id)
            ).all()
            codes = conn.execute(
                select(recovery_code_rows.c.id).where(recovery_code_rows.c.user_id == user_id)
            ).all()
            events = conn.execute(
                select(audit_events.c.strategy, audit_events.c.action, audit_events.c.success)
                .where(audit_events.c.subject == str(user_id))
                .order_by(audit_events.c.id)
            ).all()
    finally:
        db.dispose()
    return len(authenticators), len(codes), [tuple(row) for row in events]


def test_user_mfa_status_shows_totp_and_unused_recovery_codes(workdir: Path) -> None:
    """`user mfa status`: nothing for a new user; then TOTP since its confirmation and 1 of 2."""
    assert run(workdir, "user", "create", MFA_EMAIL, stdin="pw-123456\n").returncode == 0
    before = run(workdir, "user", "mfa", "status", MFA_EMAIL.upper())
    assert before.returncode == 0, before.stderr
    lines = before.stdout.strip().splitlines()
    assert lines[0].startswith(f"user: {MFA_EMAIL} (")
    assert lines[1:] == ["totp: not active", "recovery codes: none"]
    _give_second_factor(workdir, MFA_EMAIL)
    after = run(workdir, "user", "mfa", "status", MFA_EMAIL)
    assert after.returncode == 0, after.stderr
    lines = after.stdout.strip().splitlines()
    assert lines[1].startswith("totp: active since 20")
    assert lines[1].endswith("+00:00")
    assert lines[2].startswith("recovery codes: 1 unused of 2 (generated 20")


def test_user_mfa_reset_removes_the_factor_signs_out_and_audits(workdir: Path, server: str) -> None:
    """`user mfa reset`: TOTP and codes gone, the live session refused, one audit row, a notice."""
    assert run(workdir, "user", "create", MFA_EMAIL, stdin="pw-123456\n").returncode == 0
    signed_in = httpx.post(
        f"{server}/auth/user/password/sign_in",
        json={"user": {"email": MFA_EMAIL, "password": "pw-123456"}},
    )
    assert signed_in.status_code == 200
    auth = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    assert httpx.get(f"{server}/auth/me", headers=auth).status_code == 200
    user_id = _give_second_factor(workdir, MFA_EMAIL)
    assert _mfa_rows(workdir, user_id)[:2] == (1, 2)

    reset = run(workdir, "user", "mfa", "reset", MFA_EMAIL)

    assert reset.returncode == 0, reset.stderr
    assert (
        f"reset two-step verification of {MFA_EMAIL}: removed 1 authenticator(s) and 2 "
        "recovery code(s), revoked 1 session(s); the user was notified"
    ) in reset.stdout
    # The development (console) sender printed the notice: no code, no secret in it.
    assert f"To: {MFA_EMAIL}" in reset.stdout
    assert "two-step verification was reset by an administrator" in reset.stdout
    # The server is another process: it refuses the revoked session within its documented
    # bound (KEYSTILE_SESSION_CACHE_SECONDS, 1 s), not necessarily on the very next call.
    deadline = time.monotonic() + 1.5
    while httpx.get(f"{server}/auth/me", headers=auth).status_code != 401:
        assert time.monotonic() < deadline, "the revoked session was still accepted after 1.5 s"
        time.sleep(0.1)
    authenticators, codes, events = _mfa_rows(workdir, user_id)
    assert (authenticators, codes) == (0, 0)
    assert events[-1] == ("totp", "mfa_reset", True)
    assert events.count(("totp", "mfa_reset", True)) == 1
    status = run(workdir, "user", "mfa", "status", MFA_EMAIL)
    assert status.stdout.strip().splitlines()[1:] == ["totp: not active", "recovery codes: none"]


@pytest.mark.parametrize("command", ["status", "reset"])
@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("nobody@example.com", "error: No user has this email address."),
        ("not-an-email", "error: The email is not valid. (user.email must be an email address)"),
    ],
)
def test_user_mfa_for_an_unknown_email_fails_with_one_line(
    workdir: Path, command: str, email: str, message: str
) -> None:
    """An unknown or malformed email: exit 1, one `error:` line on stderr, nothing on stdout."""
    result = run(workdir, "user", "mfa", command, email)
    assert result.returncode == 1
    assert result.stderr.strip() == message
    assert result.stdout == ""
