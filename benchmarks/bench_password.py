"""Benchmark password sign-in (``POST /auth/user/password/sign_in``) against ``GET /bench/bare``.

    .venv/bin/python benchmarks/bench_password.py [--seconds 10] [--connections 16] [--workers 1]
        [--users N] [--margin 3] [--rate-limit-backend {database,memory}]

Every request is a VALID sign-in (email and the right password), so every answer must be
200. The server runs with ``KEYSTILE_PASSWORD_HASH_PRESET=test`` (Argon2id with 64 KiB and
one pass): the figure is Keystile's work around the hash (limiter hit, user lookup, the
hash check, audit record and session row, JWT), not the cost of a production Argon2 hash,
which is a deliberate setting of its own.

The per-identity limit (``KEYSTILE_PASSWORD_SIGN_IN_RATE``, default ``10/10m``) is left as
it is: the requests rotate over enough pre-created users that no identity reaches it
within the run (a benchmark run is shorter than the window). Users are created in this
process, in a temporary directory, through a :class:`keystile.runtime.Runtime` built from
the environment the server gets (``otp_seed.seeding_runtime``) and
``runtime.password.create_user``, so each password is hashed by the server's own hasher.

Steps: create a check user and the probe users; start the app under uvicorn on
127.0.0.1; the check user signs in over HTTP (200 with a token) and is refused with a
wrong password (401); a short probe run with wrk (which also warms the server up)
measures the sign-in rate, and from it enough users are created for the warm-up and the
measured run (``--margin`` times the requests the probe rate would make, divided by the
sign-ins each user may make); then the bare route and the sign-in route are measured as
in every benchmark. Exits 1 when a measured route answered errors (a 429 means too few
users: raise ``--users`` or ``--margin``), 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from harness import (
    BenchmarkError,
    LuaScript,
    Server,
    add_rate_limit_backend,
    benchmark_env,
    check_load_options,
    expect_status,
    load_options,
    main_of,
    measure,
    password_sign_in,
    report,
    require_wrk,
    run_wrk,
    running_server,
    write_body_cycle_script,
)
from keystile.limits.protection import parse_rate
from keystile.runtime import Runtime
from otp_seed import compact_json, emails, progress, seeding_runtime

SIGN_IN = "/auth/user/password/sign_in"
HASH_PRESET = "test"
PROBE_SECONDS = 2
PROBE_USERS_PER_WORKER = 400
"""Users for the probe run: at 10 sign-ins each, more than 2,000 sign-ins/s per worker."""
MIN_USERS = 100
SEED_CONCURRENCY = 8
"""User-creation tasks in flight; SQLite serialises the writes, this keeps the pool busy."""
WRK_TIMEOUT_SECONDS = 10
"""Per-request timeout: a slow answer is measured, not counted as a socket error."""
# Same-length tags, so every group's addresses have the same length.
CHECK_TAG, PROBE_TAG, WARMUP_TAG, RUN_TAG = "chk", "prb", "wup", "run"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = load_options(__doc__.splitlines()[0])
    parser.add_argument(
        "--users",
        type=int,
        default=None,
        help="users for the measured run (requests rotate over them); default: from the probe",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=3.0,
        help="create this many times the users the probe rate would need (default 3)",
    )
    add_rate_limit_backend(parser)
    args = parser.parse_args(argv)
    check_load_options(parser, args)
    if args.users is not None and args.users < 2:
        parser.error("need --users >= 2")
    if args.margin < 1:
        parser.error("need --margin >= 1")
    return args


def sign_in_body(email: str, password: str) -> str:
    """The ``POST …/password/sign_in`` JSON body, on one line."""
    return compact_json({"user": {"email": email, "password": password}})


def create_users(runtime: Runtime, addresses: Sequence[str]) -> dict[str, str]:
    """Create a user with a fresh random password for each address; ``{email: password}``.

    Through ``runtime.password.create_user``, which hashes with the configured preset, so
    the server never rehashes on sign-in. ``SEED_CONCURRENCY`` tasks in one ``anyio.run``.
    """
    passwords = {email: secrets.token_urlsafe(12) for email in addresses}
    pending = iter(addresses)
    started = time.monotonic()

    async def worker() -> None:
        for email in pending:  # a shared iterator: each address goes to exactly one task
            await runtime.password.create_user(email, passwords[email])

    async def run_all() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(SEED_CONCURRENCY):
                group.start_soon(worker)

    anyio.run(run_all)
    progress(f"created {len(addresses)} users in {time.monotonic() - started:.1f} s")
    return passwords


def users_script(workdir: Path, runtime: Runtime, tag: str, count: int, *, name: str) -> LuaScript:
    """Create ``count`` users; a wrk script that signs them in, one after another, in turn."""
    passwords = create_users(runtime, emails(tag, count))
    return write_body_cycle_script(
        workdir,
        (sign_in_body(email, password) for email, password in passwords.items()),
        path=SIGN_IN,
        name=name,
    )


def check_sign_in(server: Server, email: str, password: str) -> None:
    """The check user signs in (200 with a token) and a wrong password is refused (401).

    Raises:
        BenchmarkError: another answer.
    """
    password_sign_in(server, email, password)
    expect_status(
        "POST",
        server.url(SIGN_IN),
        401,
        json={"user": {"email": email, "password": password + "-wrong"}},
    )


def probe(server: Server, script: LuaScript, connections: int) -> float:
    """Sign-ins per second in a short wrk run (errors included: they answer faster)."""
    result = run_wrk(
        server.url(SIGN_IN),
        label=f"POST {SIGN_IN} (probe)",
        seconds=PROBE_SECONDS,
        connections=connections,
        script=script,
        timeout_seconds=WRK_TIMEOUT_SECONDS,
    )
    if result.problems:
        progress(f"the probe run had errors ({', '.join(result.problems)}); sizing from its rate")
    rate = result.requests / max(result.duration_seconds, 0.001)
    progress(f"probe: {rate:.0f} sign-ins/s")
    return rate


def users_for(rate: float, seconds: int, margin: float, per_user: int) -> int:
    """Users enough for ``margin`` times what ``rate`` makes in ``seconds``, ``per_user`` each."""
    return max(MIN_USERS, math.ceil(margin * rate * seconds / per_user))


def run(args: argparse.Namespace) -> int:
    """The benchmark; its exit status."""
    require_wrk()
    backend = args.rate_limit_backend
    with tempfile.TemporaryDirectory(prefix="keystile-bench-password-") as tmp:
        workdir = Path(tmp)
        env = benchmark_env(
            workdir,
            {
                "KEYSTILE_RATE_LIMIT_BACKEND": backend,
                "KEYSTILE_PASSWORD_HASH_PRESET": HASH_PRESET,
                # wrk sends every request from one address: the per-address spraying
                # limit (50/10m by default) would refuse all but the first 50.
                "KEYSTILE_PASSWORD_SIGN_IN_ADDRESS_RATE": "10000000/10m",
            },
        )
        with seeding_runtime(env) as runtime:
            settings = runtime.settings
            if settings.rate_limit_backend != backend:
                raise BenchmarkError(f"the runtime uses {settings.rate_limit_backend}")
            if settings.password_hash_preset != HASH_PRESET:
                raise BenchmarkError(f"the runtime hashes with {settings.password_hash_preset}")
            limit = parse_rate(settings.password_sign_in_rate).limit
            progress(
                f"rate-limit backend: {backend}; per-identity rate "
                f"{settings.password_sign_in_rate}; hash preset {HASH_PRESET}"
            )
            check_email = emails(CHECK_TAG, 1)[0]
            check_password = create_users(runtime, [check_email])[check_email]
            probe_script = users_script(
                workdir, runtime, PROBE_TAG, PROBE_USERS_PER_WORKER * args.workers, name="probe"
            )
            with running_server(workdir, env, workers=args.workers) as server:
                check_sign_in(server, check_email, check_password)
                rate = probe(server, probe_script, args.connections)
                warmup_count = users_for(rate, args.warmup, args.margin, limit)
                run_count = args.users or users_for(rate, args.seconds, args.margin, limit)
                progress(f"creating {warmup_count} warm-up and {run_count} measured users")
                warmup_script = users_script(
                    workdir, runtime, WARMUP_TAG, warmup_count, name="warmup"
                )
                script = users_script(workdir, runtime, RUN_TAG, run_count, name="run")
                bare = measure(
                    server.url("/bench/bare"),
                    label="GET /bench/bare",
                    seconds=args.seconds,
                    connections=args.connections,
                    warmup_seconds=args.warmup,
                    timeout_seconds=WRK_TIMEOUT_SECONDS,
                )
                sign_in = measure(
                    server.url(SIGN_IN),
                    label=f"POST {SIGN_IN}",
                    seconds=args.seconds,
                    connections=args.connections,
                    warmup_seconds=args.warmup,
                    script=script,
                    warmup_script=warmup_script,
                    timeout_seconds=WRK_TIMEOUT_SECONDS,
                )
        print(
            f"measured run: {sign_in.requests} sign-ins over {run_count} users, "
            f"{sign_in.requests / run_count:.1f} per user on average "
            f"(limit {settings.password_sign_in_rate})"
        )
        status = report(
            f"POST {SIGN_IN} (a valid password sign-in per request) vs GET /bench/bare",
            f"{args.workers} worker(s) · {args.connections} connections · "
            f"{args.seconds} s per route after {args.warmup} s warm-up · SQLite · "
            f"rate-limit backend {backend} · hash preset {HASH_PRESET} · "
            f"{run_count} measured users (probe {rate:.0f}/s)",
            bare,
            sign_in,
            server_log=server.log_path,
        )
        if sign_in.non_2xx:
            print(
                "a 429 among the errors means some user reached the per-identity limit: "
                "raise --users or --margin",
                file=sys.stderr,
            )
        return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the exit status."""
    return main_of(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
