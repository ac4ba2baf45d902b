"""Attack: guess a victim's sign-in code in parallel when only the audit log stands in the way.

Against a real ``keystile serve`` (SQLite, then PostgreSQL) with
``KEYSTILE_OTP_BRUTE_FORCE=rate_limit,audit_log`` and the rate limits set so
high that the audit log alone decides (at most 5 failed sign-ins per identity
in the window). Before the fix (issue 7, item 3) its count was a read outside
the attempt's transaction: 30 parallel wrong guesses gave 13 evaluated
failures. It also counted a code *request* for an unknown identity as a
failure and not one for a known identity, so the sixth request told the two
apart; and an ``audit_log``-only configuration started in production with
code requests unlimited.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import text

from keystile.store.database import Database
from tests.attacks.processes import create_user, keystile_command
from tests.servers import free_port, keystile_server

VICTIM = "victim@example.com"
UNKNOWN = "nobody-here@example.com"
GUESSES = 30
MAX_FAILURES = 5
WINDOW_SECONDS = 600
#: The OTP alphabet (unambiguous_uppercase), to build wrong guesses that look real.
ALPHABET = "ABCDEFGHJKMNPQRTUVWXY"


def _settings(database_url: str) -> dict[str, str]:
    """Audit-log protection with the rate limits out of the way."""
    return {
        "KEYSTILE_MODE": "development",
        "KEYSTILE_DATABASE_URL": database_url,
        "KEYSTILE_PASSWORD_HASH_PRESET": "test",
        "KEYSTILE_OTP_BRUTE_FORCE": "rate_limit,audit_log",
        "KEYSTILE_OTP_REQUEST_RATE": "1000/10m",
        "KEYSTILE_OTP_SIGN_IN_RATE": "1000/10m",
        "KEYSTILE_AUDIT_LOG_MAX_FAILURES": str(MAX_FAILURES),
        "KEYSTILE_AUDIT_LOG_WINDOW_SECONDS": str(WINDOW_SECONDS),
    }


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[str]:
    """``keystile serve`` on each backend, with the victim created by ``keystile user create``."""
    env = _settings(database_url)
    create_user(tmp_path, env, VICTIM, "victims-own-password")
    with keystile_server(tmp_path, env) as base:
        yield base


def _audit_counts(database_url: str, identity: str) -> dict[tuple[str, bool], int]:
    """How many audit rows of the OTP strategy ``identity`` has, per (action, success)."""
    db = Database(database_url)
    try:
        with db.read() as conn:
            rows = conn.execute(
                text(
                    "SELECT action, success, count(*) FROM keystile_audit_events "
                    "WHERE identity = :identity AND strategy = 'otp' GROUP BY action, success"
                ),
                {"identity": identity},
            ).all()
    finally:
        db.dispose()
    return {(str(action), bool(success)): int(count) for action, success, count in rows}


def _wrong_guess(real: str) -> str:
    """A code of the real alphabet and length that is certainly not ``real``."""
    while (guess := "".join(secrets.choice(ALPHABET) for _ in real)) == real:
        pass
    return guess


def _mailed_code(base: str, email: str) -> str:
    """The newest code the development mailbox holds for ``email`` (read from loopback)."""
    entries = httpx.get(f"{base}/dev/mailbox.json", timeout=10).json()
    texts = [entry["text"] for entry in entries if entry["to"] == email]
    assert texts, entries
    words = [word.strip(".,:") for word in texts[0].split()]
    codes = [word for word in words if len(word) == 6 and set(word) <= set(ALPHABET)]
    assert codes, texts[0]
    return str(codes[0])


@pytest.mark.anyio
async def test_thirty_parallel_wrong_guesses_get_exactly_the_allowed_five(
    server: str, database_url: str
) -> None:
    """The victim asks for a code; 30 wrong guesses at once: exactly 5 are evaluated (401
    authentication_failed), 25 are refused (429 too_many_attempts with Retry-After), and the
    audit log holds exactly 5 failed sign-ins. The victim's real code is refused too until
    the block lifts: nothing is verified while it holds."""
    async with httpx.AsyncClient(
        base_url=server, timeout=60, limits=httpx.Limits(max_connections=GUESSES)
    ) as client:
        asked = await client.post("/auth/user/otp/request", json={"user": {"email": VICTIM}})
        assert asked.status_code == 200
        real = _mailed_code(server, VICTIM)
        answers: list[httpx.Response] = []

        async def guess() -> None:
            body = {"user": {"email": VICTIM, "otp": _wrong_guess(real)}}
            answers.append(await client.post("/auth/user/otp/sign_in", json=body))

        async with anyio.create_task_group() as tasks:
            for _ in range(GUESSES):
                tasks.start_soon(guess)

        failed = [answer for answer in answers if answer.status_code == 401]
        refused = [answer for answer in answers if answer.status_code == 429]
        assert (len(failed), len(refused)) == (MAX_FAILURES, GUESSES - MAX_FAILURES), [
            answer.status_code for answer in answers
        ]
        assert {answer.json()["error"] for answer in failed} == {"authentication_failed"}
        assert {answer.json()["error"] for answer in refused} == {"too_many_attempts"}
        for answer in refused:
            assert 1 <= int(answer.headers["retry-after"]) <= WINDOW_SECONDS

        honest = await client.post(
            "/auth/user/otp/sign_in", json={"user": {"email": VICTIM, "otp": real}}
        )
        assert honest.status_code == 429
        assert honest.json()["error"] == "too_many_attempts"

    counts = _audit_counts(database_url, VICTIM)
    assert counts.get(("sign_in", False), 0) == MAX_FAILURES, counts
    assert counts.get(("sign_in", True), 0) == 0, counts
    assert counts.get(("sign_in_blocked", False), 0) == GUESSES - MAX_FAILURES + 1, counts


def test_code_requests_do_not_tell_known_from_unknown_identities(server: str) -> None:
    """8 code requests for a known and 8 for an unknown identity, interleaved: all 16 are
    200 with byte-identical bodies (a request is not a failure the audit log counts)."""
    answers: dict[str, list[httpx.Response]] = {VICTIM: [], UNKNOWN: []}
    with httpx.Client(base_url=server, timeout=30) as client:
        for _ in range(8):
            for email, seen in answers.items():
                seen.append(client.post("/auth/user/otp/request", json={"user": {"email": email}}))
    every = answers[VICTIM] + answers[UNKNOWN]
    assert [answer.status_code for answer in every] == [200] * 16, [
        (answer.status_code, answer.text) for answer in every
    ]
    assert {answer.content for answer in every} == {b'{"status":"ok"}'}
    assert {answer.headers["content-type"] for answer in every} == {"application/json"}


#: A production configuration that starts (checked by the control case below).
PRODUCTION = {
    "KEYSTILE_MODE": "production",
    "KEYSTILE_SIGNING_KEYS": "s" * 40,
    "KEYSTILE_HASHING_KEYS": "h" * 40,
    "KEYSTILE_ENCRYPTION_KEYS": "e" * 40,
    "KEYSTILE_SENDER": "smtp",
    "KEYSTILE_SMTP_HOST": "127.0.0.1",
    "KEYSTILE_SMTP_SECURITY": "none",
    "KEYSTILE_PASSWORD_HASH_PRESET": "rfc9106_low_memory",
}


def test_production_refuses_audit_log_alone(tmp_path: Path) -> None:
    """``keystile serve`` in production with ``KEYSTILE_OTP_BRUTE_FORCE=audit_log`` exits
    non-zero naming the option (code requests would be unlimited); the same deployment
    with ``rate_limit,audit_log`` starts."""
    upgraded = keystile_command(tmp_path, PRODUCTION, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    try:
        refused = keystile_command(
            tmp_path,
            {**PRODUCTION, "KEYSTILE_OTP_BRUTE_FORCE": "audit_log"},
            "serve",
            "--port",
            str(free_port()),
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("keystile serve started in production with audit_log protection alone")
    assert refused.returncode != 0
    assert "KEYSTILE_OTP_BRUTE_FORCE" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    with keystile_server(
        tmp_path, {**PRODUCTION, "KEYSTILE_OTP_BRUTE_FORCE": "rate_limit,audit_log"}
    ) as base:
        asked = httpx.post(
            f"{base}/auth/user/otp/request", json={"user": {"email": VICTIM}}, timeout=30
        )
        assert asked.status_code == 200
