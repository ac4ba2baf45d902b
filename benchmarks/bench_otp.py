"""Benchmark one-time-code sign-in (``POST /auth/user/otp/sign_in``) against ``GET /bench/bare``.

    .venv/bin/python benchmarks/bench_otp.py [--seconds 10] [--connections 16] [--workers 1]
        [--users N] [--rate-limit-backend {database,memory}]

Every request signs a DIFFERENT user in with a valid, unused code, so every answer must
be 200. The users and their codes are seeded in this process, in a temporary directory,
through a :class:`keystile.runtime.Runtime` built from the environment the server gets
(``otp_seed.py``); each code is stored as ``OtpService.request`` stores it, unsent.

Steps: seed a check pair and the probe pairs; start the app under uvicorn on 127.0.0.1;
sign the check pair in once over HTTP (it must answer 200); a short probe run with wrk
(which also warms the server up) measures how fast codes are used, and from it enough
fresh pairs are seeded for the warm-up and the measured run (``--margin`` times what the
probe rate would use; ``--users`` sets the measured count instead); then the bare route
and the sign-in route are measured as in every benchmark. Afterwards the database says
how many distinct codes the measured run used. Exits 1 when a measured route answered
errors or ran out of fresh pairs, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness import (
    BenchmarkError,
    LuaScript,
    Server,
    WrkResult,
    add_rate_limit_backend,
    benchmark_env,
    check_load_options,
    expect_status,
    load_options,
    main_of,
    measure,
    report,
    require_wrk,
    run_wrk,
    running_server,
    write_body_cycle_script,
)
from keystile.runtime import Runtime
from otp_seed import CodePair, count_used_codes, emails, progress, seed, seeding_runtime

SIGN_IN = "/auth/user/otp/sign_in"
PROBE_SECONDS = 2
PROBE_PAIRS_PER_WORKER = 2_500
"""Fresh pairs for the probe run: more than 1,000 sign-ins/s per worker would use up."""
MIN_PAIRS = 500
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
        help="users (each with one code) for the measured run; default: from the probe",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=3.0,
        help="seed this many times the pairs the probe rate would use (default 3)",
    )
    add_rate_limit_backend(parser)
    args = parser.parse_args(argv)
    check_load_options(parser, args)
    if args.users is not None and args.users < 2:
        parser.error("need --users >= 2")
    if args.margin < 1:
        parser.error("need --margin >= 1")
    return args


def pairs_script(
    workdir: Path, runtime: Runtime, tag: str, count: int, *, name: str
) -> tuple[LuaScript, list[CodePair]]:
    """Seed ``count`` users with a code each; a wrk script that signs each in once."""
    addresses = emails(tag, count)
    codes = seed(runtime, addresses, with_codes=addresses)
    pairs = [CodePair(email, codes[email]) for email in addresses]
    script = write_body_cycle_script(
        workdir, (pair.sign_in_body() for pair in pairs), path=SIGN_IN, name=name
    )
    return script, pairs


def check_sign_in(server: Server, pair: CodePair) -> None:
    """One seeded pair signs in over HTTP with 200 and a token (the pair is then used up).

    Raises:
        BenchmarkError: another answer.
    """
    response = expect_status(
        "POST", server.url(SIGN_IN), 200, json={"user": {"email": pair.email, "otp": pair.code}}
    )
    if not response.json().get("token"):
        raise BenchmarkError(f"POST {SIGN_IN} answered 200 without a token")


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


def check_pairs_used(runtime: Runtime, result: WrkResult, seeded: int) -> list[str]:
    """Print how many distinct measured pairs the run used; what is wrong with that, if any."""
    used, unused = count_used_codes(runtime, f"{RUN_TAG}-%")
    print(
        f"measured run: wrk counted {result.requests} answers; the server used {used} distinct "
        f"codes of the {seeded} seeded ({unused} left unused)"
    )
    problems = []
    if unused == 0:
        problems.append(f"the run used every seeded pair: raise --users or --margin ({seeded})")
    if used < result.requests - result.non_2xx:
        problems.append(f"only {used} codes used for {result.requests - result.non_2xx} 2xx")
    return problems


def run(args: argparse.Namespace) -> int:
    """The benchmark; its exit status."""
    require_wrk()
    backend = args.rate_limit_backend
    with tempfile.TemporaryDirectory(prefix="keystile-bench-otp-") as tmp:
        workdir = Path(tmp)
        env = benchmark_env(workdir, {"KEYSTILE_RATE_LIMIT_BACKEND": backend})
        with seeding_runtime(env) as runtime:
            if runtime.settings.rate_limit_backend != backend:
                raise BenchmarkError(f"the runtime uses {runtime.settings.rate_limit_backend}")
            progress(f"rate-limit backend: {backend}")
            check_email = emails(CHECK_TAG, 1)[0]
            check_codes = seed(runtime, [check_email], with_codes=[check_email])
            check_pair = CodePair(check_email, check_codes[check_email])
            probe_script, _ = pairs_script(
                workdir, runtime, PROBE_TAG, PROBE_PAIRS_PER_WORKER * args.workers, name="probe"
            )
            with running_server(workdir, env, workers=args.workers) as server:
                check_sign_in(server, check_pair)
                rate = probe(server, probe_script, args.connections)
                warmup_count = max(MIN_PAIRS, math.ceil(args.margin * rate * args.warmup))
                run_count = args.users or max(
                    MIN_PAIRS, math.ceil(args.margin * rate * args.seconds)
                )
                progress(f"seeding {warmup_count} warm-up and {run_count} measured pairs")
                warmup_script, _ = pairs_script(
                    workdir, runtime, WARMUP_TAG, warmup_count, name="warmup"
                )
                script, _ = pairs_script(workdir, runtime, RUN_TAG, run_count, name="run")
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
            pair_problems = check_pairs_used(runtime, sign_in, run_count)
        status = report(
            f"POST {SIGN_IN} (a fresh user and code per request) vs GET /bench/bare",
            f"{args.workers} worker(s) · {args.connections} connections · "
            f"{args.seconds} s per route after {args.warmup} s warm-up · SQLite · "
            f"rate-limit backend {backend} · {run_count} measured pairs "
            f"(probe {rate:.0f}/s)",
            bare,
            sign_in,
            server_log=server.log_path,
        )
        if pair_problems:
            for problem in pair_problems:
                print(f"BENCHMARK FAILED: {problem}", file=sys.stderr)
            return 1
        return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the exit status."""
    return main_of(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
