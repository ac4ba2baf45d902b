"""Benchmark ``GET /auth/me`` with a bearer token against the bare ``GET /bench/bare``.

    .venv/bin/python benchmarks/bench_me.py [--seconds 10] [--connections 16] [--workers 1]
                                            [--tokens 1]

Creates a user with the real CLI in a temporary directory, starts the benchmark app
under uvicorn on 127.0.0.1, signs in once over HTTP, then loads both routes with wrk
(a short warm-up each first) and prints requests/s, p50, p99 and the ratio. Exits 1
when a measured route answered errors, 2 when the benchmark could not run.

With ``--tokens N`` (N > 1) it signs in N times and each wrk thread cycles through its
share of the tokens, one per request: with enough tokens that none comes back within a
second, every check misses the per-process memory of live tokens and measures the full
path (JWT, thread-pool hop, database). Those runs use the cheap ``test`` password hash
and a high sign-in rate limit, so the N sign-ins take seconds, not minutes.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx

from harness import (
    WRK_THREADS,
    BenchmarkError,
    LuaScript,
    Server,
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
    parser.add_argument(
        "--tokens",
        type=int,
        default=1,
        help="distinct bearer tokens, cycled one per request (default 1: the same token)",
    )
    args = parser.parse_args(argv)
    check_load_options(parser, args)
    if args.tokens < 1:
        parser.error("need --tokens >= 1")
    return args


def sign_in_many(server: Server, count: int, password: str) -> list[str]:
    """``count`` tokens of one user, signed in over one keep-alive connection."""
    url = server.url("/auth/user/password/sign_in")
    body = {"user": {"email": EMAIL, "password": password}}
    tokens = []
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            response = client.post(url, json=body)
            if response.status_code != 200:
                raise BenchmarkError(f"sign-in answered {response.status_code}: {response.text}")
            tokens.append(response.json()["token"])
    return tokens


def write_token_cycle_script(directory: Path, tokens: Sequence[str], path: str) -> LuaScript:
    """A wrk script sending ``GET path`` with a different bearer token each request.

    wrk thread *k* of :data:`WRK_THREADS` takes tokens *k*, *k + threads*, … and starts
    over at the end of its share; the requests are formatted once, at start-up.
    """
    data = directory / "tokens.txt"
    data.write_text("".join(token + "\n" for token in tokens), encoding="ascii")
    script = f"""\
-- Written by benchmarks/bench_me.py: GET {path}, one bearer token per request.
local threads = {WRK_THREADS}
local next_index = 0
function setup(thread)
  thread:set("thread_index", next_index)
  next_index = next_index + 1
end

local requests = {{}}
local position = 0

function init(args)
  local line_index = 0
  for line in io.lines("{data}") do
    if line_index % threads == thread_index then
      local headers = {{}}
      for key, value in pairs(wrk.headers) do headers[key] = value end
      headers["Authorization"] = "Bearer " .. line
      requests[#requests + 1] = wrk.format("GET", "{path}", headers)
    end
    line_index = line_index + 1
  end
  if #requests == 0 then error("no tokens for wrk thread " .. thread_index) end
end

function request()
  position = position % #requests + 1
  return requests[position]
end
"""
    script_path = directory / "tokens.lua"
    script_path.write_text(script, encoding="utf-8")
    return LuaScript(script_path, WRK_THREADS, len(tokens))


def run(args: argparse.Namespace) -> int:
    """The benchmark; its exit status."""
    require_wrk()
    password = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="keystile-bench-me-") as tmp:
        workdir = Path(tmp)
        many = args.tokens > 1
        extra = {
            "KEYSTILE_PASSWORD_HASH_PRESET": "test",
            "KEYSTILE_PASSWORD_SIGN_IN_RATE": f"{2 * args.tokens}/10m",
            "KEYSTILE_PASSWORD_SIGN_IN_ADDRESS_RATE": f"{2 * args.tokens}/10m",
        }
        env = benchmark_env(workdir, extra if many else None)
        create_user(EMAIL, password, env=env, cwd=workdir)
        with running_server(workdir, env, workers=args.workers) as server:
            token = password_sign_in(server, EMAIL, password)
            auth = {"Authorization": f"Bearer {token}"}
            expect_status("GET", server.url("/auth/me"), 200, headers=auth)
            script = None
            if many:
                tokens = sign_in_many(server, args.tokens, password)
                script = write_token_cycle_script(workdir, tokens, "/auth/me")
                auth = {}
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
                script=script,
                seconds=args.seconds,
                connections=args.connections,
                warmup_seconds=args.warmup,
            )
        status = report(
            "GET /auth/me (Authorization: Bearer) vs GET /bench/bare",
            f"{args.workers} worker(s) · {args.connections} connections · "
            f"{args.seconds} s per route after {args.warmup} s warm-up · SQLite · "
            f"{args.tokens} token(s)",
            bare,
            me,
            server_log=server.log_path,
        )
        if many and me.requests_per_second > 0:
            print(
                f"each token came back every {args.tokens / me.requests_per_second:.2f} s "
                "on average (over 1 s: every check missed the memory of live tokens)"
            )
        return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the exit status."""
    return main_of(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
