"""Benchmark a scripted POST (a different JSON body per request) against ``GET /bench/bare``.

    .venv/bin/python benchmarks/bench_echo.py [--seconds 10] [--connections 16] [--workers 1]

The pattern for benchmarks that need a fresh request body each time (one-time-code
sign-in, for one): bodies are generated up front and wrk cycles through them with the
script of :func:`harness.write_body_cycle_script`. Here the target is ``POST /bench/echo``,
which only parses and counts its body, so the ratio is the cost of the Lua script and
the JSON parsing, and the run checks the script itself: with one worker it asks the
server how many bodies it received and fails unless every one was distinct, i.e. no
body was sent twice, across both wrk threads.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness import (
    BenchmarkError,
    WrkResult,
    benchmark_env,
    check_load_options,
    expect_status,
    load_options,
    main_of,
    measure,
    report,
    require_wrk,
    running_server,
    write_body_cycle_script,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = load_options(__doc__.splitlines()[0])
    parser.add_argument(
        "--bodies", type=int, default=300_000, help="distinct bodies for the measured run"
    )
    args = parser.parse_args(argv)
    check_load_options(parser, args)
    if args.bodies < 2:
        parser.error("need --bodies >= 2")
    return args


def check_no_body_repeated(base_url: str, sent: int) -> None:
    """With one worker: the server saw ``sent`` or more echo requests, all distinct.

    Raises:
        BenchmarkError: a body arrived twice, or fewer arrived than wrk reports.
    """
    stats = expect_status("GET", f"{base_url}/bench/echo/stats").json()
    requests, distinct = int(stats["requests"]), int(stats["distinct"])
    print(f"server received {requests} echo requests, {distinct} distinct bodies")
    if requests != distinct:
        raise BenchmarkError(
            f"{requests - distinct} bodies arrived more than once: the Lua script repeats "
            "bodies (or the run outlasted --bodies; raise it)"
        )
    if requests < sent:
        raise BenchmarkError(f"wrk reports {sent} requests, the server counted {requests}")


def run(args: argparse.Namespace) -> int:
    """The benchmark; its exit status."""
    require_wrk()
    with tempfile.TemporaryDirectory(prefix="keystile-bench-echo-") as tmp:
        workdir = Path(tmp)
        env = benchmark_env(workdir)
        # Distinct bodies for the warm-up (negative n) and the measured run (n >= 1).
        warmup_script = write_body_cycle_script(
            workdir,
            (json.dumps({"n": -n}) for n in range(1, args.bodies // 2 + 2)),
            path="/bench/echo",
            name="warmup",
        )
        script = write_body_cycle_script(
            workdir,
            (json.dumps({"n": n}) for n in range(1, args.bodies + 1)),
            path="/bench/echo",
        )
        with running_server(workdir, env, workers=args.workers) as server:
            expect_status("POST", server.url("/bench/echo"), json={"n": 0})
            bare = measure(
                server.url("/bench/bare"),
                label="GET /bench/bare",
                seconds=args.seconds,
                connections=args.connections,
                warmup_seconds=args.warmup,
            )
            echo: WrkResult = measure(
                server.url("/bench/echo"),
                label="POST /bench/echo",
                seconds=args.seconds,
                connections=args.connections,
                warmup_seconds=args.warmup,
                script=script,
                warmup_script=warmup_script,
            )
            if args.workers == 1:
                # + 1 for the check above; the warm-up's count is not known, so ">=".
                check_no_body_repeated(server.base_url, echo.requests + 1)
            else:
                print("(distinct-body check skipped: it needs --workers 1)")
        return report(
            "POST /bench/echo (Lua script, a different body per request) vs GET /bench/bare",
            f"{args.workers} worker(s) · {args.connections} connections · "
            f"{args.seconds} s per route after {args.warmup} s warm-up · "
            f"{script.bodies} bodies",
            bare,
            echo,
            server_log=server.log_path,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the exit status."""
    return main_of(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
