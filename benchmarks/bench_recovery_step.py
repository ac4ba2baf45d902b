"""Benchmark the recovery-code step of a sign-in (``POST /auth/user/recovery_code/verify``).

    .venv/bin/python benchmarks/bench_recovery_step.py [--seconds 10] [--connections 16]
        [--workers 1] [--users N] [--margin 3]
    .venv/bin/python benchmarks/bench_recovery_step.py --clients N [--seconds 10] [...]

Each request finishes a held sign-in with a recovery code, ``{"user": {"mfa_token",
"code"}}``, for a different user: a code is single use and so is an mfa_token. Every user
has a random password, an active TOTP authenticator (``keystile.testing.enrol_totp``) and a
batch of recovery codes (``runtime.recovery_codes.generate``), made in this process through
a :class:`~keystile.runtime.Runtime` under the server's environment (same SQLite file, same
keys); the mfa_tokens come from ``runtime.sign_in.password`` before the load, stored as a
password sign-in over HTTP stores them (they live 5 minutes). The server runs with
``KEYSTILE_PASSWORD_HASH_PRESET=test`` and the database limiter; every limit keeps its
default (one success per user never reaches the recovery-code limit, which counts failures).

Default: wrk with 2 threads and ``--connections`` (16) kept-alive connections against the
bare route and then the verify route, as in every benchmark, and their ratio.

``--clients N``: the shape of django-allauth's ``bench.py --mode rc-step -c N`` (read
``/work/shared/peers/allauth/bench.py``, ``bench_rc_step``): ``N`` clients, each sending
one request after another, each request on a new connection (``Connection: close``), one
op = one request, ops/s = completed ops ÷ the run's time. wrk runs one thread and one
connection per client; the bare route runs in the same run with the same threads,
connections and connection handling.

Both print the requests per second, p50 and p99 (wrk's), the server's CPU (user + system,
all its processes, from ``/proc``, as allauth counts its gunicorn master and workers) per
verify, and the ratio to the bare route. After the load the database must show at least
as many codes used by the measured users as wrk counted answers, and some left unused.

Exits 1 when a measured run answered errors (any non-2xx or socket error) or a check
failed, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy import func, select

from harness import (
    WRK_THREADS,
    BenchmarkError,
    LuaScript,
    Server,
    WrkResult,
    benchmark_env,
    check_load_options,
    expect_status,
    load_options,
    main_of,
    measure,
    probe_rate,
    report,
    require_wrk,
    run_wrk,
    running_server,
    server_cpu_seconds,
    users_for,
    write_body_cycle_script,
)
from keystile import testing
from keystile.runtime import Runtime
from keystile.store.tables import recovery_codes, users
from otp_seed import Account, emails, progress, seed_accounts, seeding_runtime

VERIFY = "/auth/user/recovery_code/verify"
SIGN_IN = "/auth/user/password/sign_in"
HASH_PRESET = "test"
RATE_LIMIT_BACKEND = "database"
PROBE_SECONDS = 2
PROBE_USERS_PER_WORKER = 2_000
"""Users for the probe: more than it uses at 1,000 verifies/s per worker."""
WRK_TIMEOUT_SECONDS = 10
"""Per-request timeout: a slow answer is measured, not counted as a socket error."""
MFA_TOKEN_LIFETIME_SECONDS = 300
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Same-length tags, so every group's addresses have the same length.
CHECK_TAG, PROBE_TAG, WARMUP_TAG, RUN_TAG = "chk", "prb", "wup", "run"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = load_options(__doc__.splitlines()[0])
    parser.add_argument(
        "--clients",
        type=int,
        default=None,
        help="allauth's rc-step shape: N clients, one wrk thread and one connection each, "
        "a new connection per request (overrides --connections)",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=None,
        help="users for the measured run (one verify each); default: from the probe",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=3.0,
        help="seed this many times the users the probe rate would use (default 3)",
    )
    args = parser.parse_args(argv)
    check_load_options(parser, args)
    if args.clients is not None and args.clients < 1:
        parser.error("need --clients >= 1")
    if args.users is not None and args.users < 2:
        parser.error("need --users >= 2")
    if args.margin < 1:
        parser.error("need --margin >= 1")
    return args


class Load:
    """How wrk loads both routes: threads, connections and the connection header."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.clients: int | None = args.clients
        self.threads = args.clients or WRK_THREADS
        self.connections = args.clients or args.connections
        self.headers = {"Connection": "close"} if args.clients else {}

    def describe(self) -> str:
        """One line for the report."""
        if self.clients is None:
            return f"{self.connections} kept-alive connections, {self.threads} wrk threads"
        return (
            f"{self.clients} clients (allauth's rc-step shape): one wrk thread and one "
            "connection each, a new connection per request"
        )

    def script(self, workdir: Path, accounts: Sequence[Account], name: str) -> LuaScript:
        """A wrk script sending each account's verify body (its first code) once."""
        return write_body_cycle_script(
            workdir,
            (account.recovery_body(0) for account in accounts),
            path=VERIFY,
            headers=self.headers,
            threads=self.threads,
            name=name,
        )

    def run(self, server: Server, script: LuaScript, *, label: str, seconds: int) -> WrkResult:
        """One wrk run of the verify route."""
        return run_wrk(
            server.url(VERIFY),
            label=label,
            seconds=seconds,
            connections=self.connections,
            threads=self.threads,
            script=script,
            timeout_seconds=WRK_TIMEOUT_SECONDS,
        )


# --- checks -----------------------------------------------------------------------------------


def password_step(server: Server, account: Account) -> str:
    """The password step over HTTP: 200 ``mfa_required`` offering recovery codes; the mfa_token.

    Raises:
        BenchmarkError: another answer.
    """
    body = expect_status("POST", server.url(SIGN_IN), json=_sign_in_json(account)).json()
    if body.get("mfa_required") is not True or "recovery_code" not in body.get("methods", []):
        raise BenchmarkError(f"the password step did not offer recovery codes: {body}")
    token = body.get("mfa_token")
    if not isinstance(token, str) or not token or "token" in body:
        raise BenchmarkError("the password step answered a session or no mfa_token")
    return token


def _sign_in_json(account: Account) -> dict[str, object]:
    return {"user": {"email": account.email, "password": account.password}}


def check_verify(server: Server, account: Account, other: Account) -> None:
    """What the measured answers stand for, checked once over HTTP before the load.

    Input that cannot be a code is 400 ``invalid_request``; a well-formed code of another
    user is 401; the account's own code is 200 with a session of both factors and 9 codes
    remaining; the same code again, on a new sign-in, is 401 (single use).

    Raises:
        BenchmarkError: another answer.
    """
    mfa_token = password_step(server, account)

    def send(code: str, status: int, token: str = mfa_token) -> dict[str, object]:
        body = {"user": {"mfa_token": token, "code": code}}
        answer: dict[str, object] = expect_status(
            "POST", server.url(VERIFY), status, json=body
        ).json()
        return answer

    malformed = send("not a code!", 400)
    if malformed.get("error") != "invalid_request":
        raise BenchmarkError(f"a malformed code was not refused as invalid_request: {malformed}")
    send(other.recovery_codes[0], 401)
    random_code = "".join(secrets.choice(CROCKFORD) for _ in range(16))
    send(random_code, 401)
    body = send(account.recovery_codes[0], 200)
    if (
        body.get("authentication_strategies") != ["password", "recovery_code"]
        or not body.get("token")
        or body.get("recovery_codes_remaining") != 9
    ):
        raise BenchmarkError(f"the verify answer is not a recovery-code session: {body}")
    send(account.recovery_codes[0], 401, password_step(server, account))


def used_codes(runtime: Runtime, tag: str) -> tuple[int, int]:
    """``(used, users)``: codes used by the users of ``tag``, and how many of those users."""
    spent = recovery_codes.c.used_at.is_not(None)
    used = func.count().filter(spent)
    holders = func.count(func.distinct(recovery_codes.c.user_id)).filter(spent)
    query = (
        select(used, holders)
        .select_from(recovery_codes.join(users, users.c.id == recovery_codes.c.user_id))
        .where(users.c.email.like(f"{tag}-%"))
    )
    with testing.database(runtime).read() as conn:
        count, people = conn.execute(query).one()
    return int(count), int(people)


# --- the run ----------------------------------------------------------------------------------


def seed(runtime: Runtime, tag: str, count: int, *, with_tokens: bool = True) -> list[Account]:
    """``count`` users of ``tag`` with an authenticator, recovery codes and (default) a held
    sign-in each."""
    return seed_accounts(runtime, emails(tag, count), with_tokens=with_tokens, recovery_codes=True)


def run_load(args: argparse.Namespace, workdir: Path, env: Mapping[str, str]) -> int:
    """The checks, the probe, the bare route and the verify route; the exit status."""
    load = Load(args)
    with seeding_runtime(env) as runtime:
        check, other = seed(runtime, CHECK_TAG, 2, with_tokens=False)
        probe_accounts = seed(runtime, PROBE_TAG, PROBE_USERS_PER_WORKER * args.workers)
        with running_server(workdir, env, workers=args.workers) as server:
            check_verify(server, check, other)
            probe = load.run(
                server,
                load.script(workdir, probe_accounts, "probe"),
                label=f"POST {VERIFY} (probe)",
                seconds=PROBE_SECONDS,
            )
            rate = probe_rate(probe, "verifies")
            warmup_count = users_for(rate, args.warmup, args.margin)
            run_count = args.users or users_for(rate, args.seconds, args.margin)
            progress(f"seeding {warmup_count} warm-up and {run_count} measured users")
            seeding_started = time.monotonic()
            warmup_accounts = seed(runtime, WARMUP_TAG, warmup_count)
            run_accounts = seed(runtime, RUN_TAG, run_count)
            bare = measure(
                server.url("/bench/bare"),
                label="GET /bench/bare",
                seconds=args.seconds,
                connections=load.connections,
                threads=load.threads,
                headers=load.headers,
                warmup_seconds=args.warmup,
                timeout_seconds=WRK_TIMEOUT_SECONDS,
            )
            if args.warmup > 0:
                progress(f"warming up POST {VERIFY} for {args.warmup} s")
                load.run(
                    server,
                    load.script(workdir, warmup_accounts, "warmup"),
                    label=f"POST {VERIFY} (warm-up)",
                    seconds=args.warmup,
                )
            progress(f"measuring POST {VERIFY} for {args.seconds} s: {load.describe()}")
            script = load.script(workdir, run_accounts, "run")
            cpu_before = server_cpu_seconds(server.pid)
            verify = load.run(server, script, label=f"POST {VERIFY}", seconds=args.seconds)
            server_cpu = server_cpu_seconds(server.pid) - cpu_before
            token_age = time.monotonic() - seeding_started
        used, holders = used_codes(runtime, RUN_TAG)
    cpu_ms = 1000 * server_cpu / max(verify.requests, 1)
    print(
        f"measured run: {verify.requests} verifies by wrk; the database shows {used} codes "
        f"used by {holders} of the {run_count} measured users (one each, a few more than wrk "
        f"counts: answers in flight when it stopped); the oldest mfa_token was at most "
        f"{token_age:.0f} s old at the end (lifetime {MFA_TOKEN_LIFETIME_SECONDS} s)"
    )
    status = report(
        f"POST {VERIFY} (the recovery-code step of a held sign-in, a fresh user per "
        "request) vs GET /bench/bare",
        f"{args.workers} worker(s) · {load.describe()} · {args.seconds} s per route after "
        f"{args.warmup} s warm-up · SQLite · rate-limit backend {RATE_LIMIT_BACKEND} · hash "
        f"preset {HASH_PRESET} · {run_count} measured users (probe {rate:.0f}/s)",
        bare,
        verify,
        server_log=server.log_path,
    )
    print(
        f"as allauth's bench.py reports rc-step: {verify.requests_per_second:.1f} ops/s  "
        f"p50 {verify.p50_ms:.1f} ms  p99 {verify.p99_ms:.1f} ms  "
        f"server CPU {cpu_ms:.2f} ms/op"
    )
    failures = []
    if token_age > MFA_TOKEN_LIFETIME_SECONDS:
        failures.append("some mfa_tokens may have expired during the run")
    if verify.requests > run_count:
        failures.append("the run used more requests than held sign-ins: raise --users")
    if used < verify.requests or used != holders:
        failures.append(f"{used} codes used by {holders} users for {verify.requests} answers")
    if used >= run_count:
        failures.append("every measured user's code was used: raise --users or --margin")
    for failure in failures:
        print(f"BENCHMARK FAILED: {failure}", file=sys.stderr)
    return 1 if failures else status


def run(args: argparse.Namespace) -> int:
    """The benchmark; its exit status."""
    require_wrk()
    with tempfile.TemporaryDirectory(prefix="keystile-bench-recovery-step-") as tmp:
        workdir = Path(tmp)
        env = benchmark_env(
            workdir,
            {
                "KEYSTILE_RATE_LIMIT_BACKEND": RATE_LIMIT_BACKEND,
                "KEYSTILE_PASSWORD_HASH_PRESET": HASH_PRESET,
            },
        )
        progress(
            f"rate-limit backend {RATE_LIMIT_BACKEND}; hash preset {HASH_PRESET}; "
            "every limit at its default"
        )
        return run_load(args, workdir, env)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the exit status."""
    return main_of(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
