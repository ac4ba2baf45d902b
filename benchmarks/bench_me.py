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
    BenchmarkError,
    benchmark_env,
    create_user,
    expect_status,
    install_sigterm_handler,
    measure,
    password_sign_in,
    report,
    require_wrk,
    running_server,
)

EMAIL = "bench@example.com"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="measured run per route")
    parser.add_argument("--connections", type=int, default=16, help="open HTTP connections")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per route")
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.connections < 2 or args.workers < 1 or args.warmup < 0:
        parser.error("need --seconds >= 1, --connections >= 2, --workers >= 1, --warmup >= 0")
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
    install_sigterm_handler()
    try:
        return run(parse_args(argv))
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
