"""Benchmark ``GET /auth/me`` with a bearer token against the bare ``GET /bench/bare``.

    .venv/bin/python benchmarks/bench_me.py [--seconds 10] [--connections 16] [--workers 1]

Creates a user with the real CLI in a temporary directory, starts the benchmark app
under uvicorn on 127.0.0.1, signs in once over HTTP, then loads both routes with wrk
(a short warm-up each first) and prints requests/s, p50, p99 and the ratio. Exits 1
when a measured route answered errors, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness import (
    benchmark_env,
    check_load_options,
    create_user,
    expect_status,
    load_options,
    main_of,
    measure,
    password_sign_in,
    report,
    require_wrk,
    running_server,
)

EMAIL = "bench@example.com"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = load_options(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    check_load_options(parser, args)
    return args


def run(args: argparse.Namespace) -> int:
    """The benchmark; its exit status."""
    require_wrk()
    password = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="keystile-bench-me-") as tmp:
        workdir = Path(tmp)
        env = benchmark_env(workdir)
        create_user(EMAIL, password, env=env, cwd=workdir)
        with running_server(workdir, env, workers=args.workers) as server:
            token = password_sign_in(server, EMAIL, password)
            auth = {"Authorization": f"Bearer {token}"}
            expect_status("GET", server.url("/auth/me"), 200, headers=auth)
            bare = measure(
                server.url("/bench/bare"),
                label="GET /bench/bare",
                seconds=args.seconds,
                connections=args.connections,
                warmup_seconds=args.warmup,
            )
            me = measure(
                server.url("/auth/me"),
                label="GET /auth/me",
                headers=auth,
                seconds=args.seconds,
                connections=args.connections,
                warmup_seconds=args.warmup,
            )
        return report(
            "GET /auth/me (Authorization: Bearer) vs GET /bench/bare",
            f"{args.workers} worker(s) · {args.connections} connections · "
            f"{args.seconds} s per route after {args.warmup} s warm-up · SQLite",
            bare,
            me,
            server_log=server.log_path,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the exit status."""
    return main_of(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
