"""Benchmark the TOTP step (``POST /auth/user/totp/verify``) and the password + TOTP sign-in.

    .venv/bin/python benchmarks/bench_totp.py [--mode step] [--seconds 10] [--connections 16]
        [--workers 1] [--users N] [--margin 3]
    .venv/bin/python benchmarks/bench_totp.py --mode flow [--clients 16] [--seconds 10]
        [--workers 1] [--users N] [--margin 3] [--client {wrk,python}] [--keep-alive]

Every user has an active TOTP authenticator (``keystile.testing.enrol_totp``) and a random
password; each is used for one sign-in only, because a code's time step is accepted once
per authenticator. The server runs with ``KEYSTILE_PASSWORD_HASH_PRESET=test`` (Argon2id,
64 KiB, one pass) and the database limiter; the per-address password limit
(``KEYSTILE_PASSWORD_SIGN_IN_ADDRESS_RATE``, 50/10m) is raised to 10,000,000/10m because
wrk sends everything from 127.0.0.1. Every other limit keeps its default: each user signs
in once (``10/10m`` per identity) and passes one TOTP check (``5/5m`` per user).

``--mode step`` (default): each request finishes a held sign-in, ``{"user": {"mfa_token",
"code"}}`` for a different user. The mfa_tokens are made before the load, in this process,
with ``runtime.sign_in.password`` on a :class:`~keystile.runtime.Runtime` under the
server's environment (same SQLite file, same keys), which stores them as a password
sign-in over HTTP does; they live 5 minutes. The codes are computed just before each wrk
run, for the current time step (or the next one when the current one would leave the
window, of one step either side, too soon): see :func:`code_step`. wrk against the bare
route and the verify route, as in every benchmark; every answer must be 200.

``--mode flow``: the sign-in as a client makes it, two requests per flow (password, then
the TOTP code with the mfa_token of the first answer), as django-allauth's peer
``bench.py --mode totp-flow -c N`` measures it: ``--clients`` flows at once, each flow
timed as the sum of its two request times, counted in flows per second, p50 and p99 per
flow (allauth's percentile rule). The client is wrk with a Lua script (one thread and one
connection per client, so the per-thread Lua state is the client's state): it reads the
``mfa_token`` from the first answer and sends the precomputed code for that user. Like
allauth's client, each request opens a new connection (``Connection: close``) unless
``--keep-alive``. ``--client python`` runs the flows from a Python thread pool with
``http.client`` instead, allauth's own kind of client (:func:`python_flows`). The bare
route is loaded by wrk with the same threads, connections and connection handling in the
same run. Both modes print the server's CPU (user + system, all its processes) per verify
or per flow, as allauth's ``bench.py`` does.

Exits 1 when a measured run answered errors (any non-2xx, a flow that failed, or a socket
error), 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from harness import (
    BenchmarkError,
    LuaScript,
    Server,
    WrkResult,
    benchmark_env,
    check_load_options,
    describe_environment,
    expect_status,
    load_options,
    lua_string,
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
from otp_seed import Account, compact_json, emails, progress, seed_accounts, seeding_runtime

VERIFY = "/auth/user/totp/verify"
SIGN_IN = "/auth/user/password/sign_in"
HASH_PRESET = "test"
RATE_LIMIT_BACKEND = "database"
ADDRESS_RATE = "10000000/10m"
"""The per-address password limit for the run: wrk sends every request from 127.0.0.1."""
PERIOD = 30
"""The TOTP period (Keystile's default, which ``enrol_totp`` uses)."""
PROBE_SECONDS = 2
PROBE_USERS_PER_WORKER = {"step": 2_000, "flow": 800}
"""Users for the probe: more than it uses at 1,000 verifies or 400 flows/s per worker."""
WRK_TIMEOUT_SECONDS = 10
"""Per-request timeout: a slow answer is measured, not counted as a socket error."""
MFA_TOKEN_LIFETIME_SECONDS = 300
# Same-length tags, so every group's addresses have the same length.
CHECK_TAG, PROBE_TAG, WARMUP_TAG, RUN_TAG = "chk", "prb", "wup", "run"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = load_options(__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("step", "flow"), default="step")
    parser.add_argument(
        "--clients",
        type=int,
        default=16,
        help="flow mode: concurrent flows (wrk threads and connections, one each)",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=None,
        help="users for the measured run (one sign-in each); default: from the probe",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=3.0,
        help="seed this many times the users the probe rate would use (default 3)",
    )
    parser.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk",
        help="flow mode: wrk with a Lua script, or a Python thread pool like allauth's client",
    )
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="flow mode: reuse each client's connection (default: one per request, as allauth's)",
    )
    args = parser.parse_args(argv)
    check_load_options(parser, args)
    if args.clients < 1:
        parser.error("need --clients >= 1")
    if args.keep_alive and args.client == "python":
        parser.error("--keep-alive is for --client wrk (the Python client connects per request)")
    if args.users is not None and args.users < 2:
        parser.error("need --users >= 2")
    if args.margin < 1:
        parser.error("need --margin >= 1")
    return args


# --- seeding ----------------------------------------------------------------------------------


def code_step(valid_for_seconds: float, *, now: float | None = None) -> int:
    """The time step whose codes the server accepts for the next ``valid_for_seconds``.

    With Keystile's default window (one step either side), a code of step ``s`` is
    accepted while the server's step is ``s - 1``, ``s`` or ``s + 1``: until the end of
    step ``s + 1``. The current step when that leaves enough time, else the next one
    (which the server accepts already, and for at least 60 s).
    """
    now = time.time() if now is None else now
    current = int(now) // PERIOD
    if (current + 2) * PERIOD - now >= valid_for_seconds:
        return current
    return current + 1


# --- checks -----------------------------------------------------------------------------------


def password_step(server: Server, account: Account) -> str:
    """The password step over HTTP: it must answer 200 ``mfa_required``; the mfa_token.

    Raises:
        BenchmarkError: another answer.
    """
    body = expect_status(
        "POST",
        server.url(SIGN_IN),
        json={"user": {"email": account.email, "password": account.password}},
    ).json()
    if body.get("mfa_required") is not True or body.get("methods") != ["totp"]:
        raise BenchmarkError(f"the password step did not ask for a second factor: {body}")
    token = body.get("mfa_token")
    if not isinstance(token, str) or not token or "session" in body or "token" in body:
        raise BenchmarkError("the password step answered a session or no mfa_token")
    return token


def check_verify(server: Server, account: Account, mfa_token: str) -> None:
    """A wrong code is refused (401); the right one answers 200 with a session of both factors.

    Raises:
        BenchmarkError: another answer.
    """
    step = code_step(10)
    wrong = f"{(int(account.code(step)) + 1) % 1_000_000:06d}"
    expect_status(
        "POST", server.url(VERIFY), 401, json={"user": {"mfa_token": mfa_token, "code": wrong}}
    )
    body = expect_status(
        "POST",
        server.url(VERIFY),
        json={"user": {"mfa_token": mfa_token, "code": account.code(step)}},
    ).json()
    if body.get("authentication_strategies") != ["password", "totp"] or not body.get("token"):
        raise BenchmarkError(f"the verify answer is not a two-factor session: {body}")


# --- step mode --------------------------------------------------------------------------------


def verify_script(
    workdir: Path, accounts: Sequence[Account], *, valid_for: float, name: str
) -> LuaScript:
    """A wrk script sending each account's verify body once, codes of :func:`code_step`."""
    step = code_step(valid_for)
    return write_body_cycle_script(
        workdir, (account.verify_body(step) for account in accounts), path=VERIFY, name=name
    )


def run_step(args: argparse.Namespace, workdir: Path, env: Mapping[str, str]) -> int:
    """``--mode step``: the verify route next to the bare route; the exit status."""
    with seeding_runtime(env) as runtime:
        check = seed_accounts(runtime, emails(CHECK_TAG, 1), with_tokens=False)[0]
        probe_accounts = seed_accounts(
            runtime,
            emails(PROBE_TAG, PROBE_USERS_PER_WORKER["step"] * args.workers),
            with_tokens=True,
        )
        with running_server(workdir, env, workers=args.workers) as server:
            check_verify(server, check, password_step(server, check))
            probe = run_wrk(
                server.url(VERIFY),
                label=f"POST {VERIFY} (probe)",
                seconds=PROBE_SECONDS,
                connections=args.connections,
                script=verify_script(workdir, probe_accounts, valid_for=15, name="probe"),
                timeout_seconds=WRK_TIMEOUT_SECONDS,
            )
            rate = probe_rate(probe, "verifies")
            warmup_count = users_for(rate, args.warmup, args.margin)
            run_count = args.users or users_for(rate, args.seconds, args.margin)
            progress(f"seeding {warmup_count} warm-up and {run_count} measured users")
            seeding_started = time.monotonic()
            warmup_accounts = seed_accounts(
                runtime, emails(WARMUP_TAG, warmup_count), with_tokens=True
            )
            run_accounts = seed_accounts(runtime, emails(RUN_TAG, run_count), with_tokens=True)
            bare = measure(
                server.url("/bench/bare"),
                label="GET /bench/bare",
                seconds=args.seconds,
                connections=args.connections,
                warmup_seconds=args.warmup,
                timeout_seconds=WRK_TIMEOUT_SECONDS,
            )
            if args.warmup > 0:
                progress(f"warming up POST {VERIFY} for {args.warmup} s")
                run_wrk(
                    server.url(VERIFY),
                    label=f"POST {VERIFY} (warm-up)",
                    seconds=args.warmup,
                    connections=args.connections,
                    script=verify_script(
                        workdir, warmup_accounts, valid_for=args.warmup + 15, name="warmup"
                    ),
                    timeout_seconds=WRK_TIMEOUT_SECONDS,
                )
            progress(
                f"measuring POST {VERIFY} for {args.seconds} s with {args.connections} connections"
            )
            script = verify_script(workdir, run_accounts, valid_for=args.seconds + 15, name="run")
            cpu_before = server_cpu_seconds(server.pid)
            verify = run_wrk(
                server.url(VERIFY),
                label=f"POST {VERIFY}",
                seconds=args.seconds,
                connections=args.connections,
                script=script,
                timeout_seconds=WRK_TIMEOUT_SECONDS,
            )
            server_cpu = server_cpu_seconds(server.pid) - cpu_before
            token_age = time.monotonic() - seeding_started
    print(
        f"measured run: {verify.requests} verifies over {run_count} held sign-ins "
        f"(each usable once); the oldest mfa_token was at most {token_age:.0f} s old at the end "
        f"(lifetime {MFA_TOKEN_LIFETIME_SECONDS} s); server CPU "
        f"{1000 * server_cpu / max(verify.requests, 1):.2f} ms per verify"
    )
    status = report(
        f"POST {VERIFY} (the TOTP step of a held sign-in, a fresh user per request) "
        "vs GET /bench/bare",
        f"{args.workers} worker(s) · {args.connections} connections · {args.seconds} s per "
        f"route after {args.warmup} s warm-up · SQLite · rate-limit backend "
        f"{RATE_LIMIT_BACKEND} · {run_count} measured users (probe {rate:.0f}/s)",
        bare,
        verify,
        server_log=server.log_path,
    )
    if token_age > MFA_TOKEN_LIFETIME_SECONDS:
        print("some mfa_tokens may have expired during the run", file=sys.stderr)
        return 1
    if verify.requests > run_count:
        print("the run used more requests than held sign-ins: raise --users", file=sys.stderr)
        return 1
    return status


# --- flow mode --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowResult:
    """The figures of one flow run: flows completed, failures, their latencies."""

    label: str
    duration_seconds: float
    latencies_ms: Sequence[float]
    """The sum of the two request times of every completed flow."""
    password_failures: int
    verify_failures: int
    wrk: WrkResult | None
    """wrk's own figures (``--client wrk``); ``None`` for the Python client."""
    server_cpu_seconds: float

    @property
    def socket_errors(self) -> int:
        """wrk's socket errors (the Python client counts a failed connection as a failure)."""
        return self.wrk.socket_errors.total if self.wrk is not None else 0

    @property
    def server_cpu_ms_per_flow(self) -> float:
        """Server CPU (all its processes) per completed flow, milliseconds."""
        return 1000.0 * self.server_cpu_seconds / max(self.flows, 1)

    @property
    def flows(self) -> int:
        """Completed flows (both answers 200, the second with a session)."""
        return len(self.latencies_ms)

    @property
    def flows_per_second(self) -> float:
        """Completed flows per second of the run."""
        return self.flows / self.duration_seconds

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile of flow latency, by allauth's ``bench.py`` rule."""
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[k]

    @property
    def problems(self) -> list[str]:
        """Why these figures are worthless; empty when they are sound."""
        wrk_problems = self.wrk.problems if self.wrk is not None else []
        found = [problem for problem in wrk_problems if problem != "no request completed"]
        if self.flows == 0:
            found.append("no flow completed")
        if self.password_failures:
            found.append(f"{self.password_failures} password steps without an mfa_token")
        if self.verify_failures:
            found.append(f"{self.verify_failures} TOTP steps without a session")
        return found


_FLOW_LUA = """\
-- Written by benchmarks/bench_totp.py: the password + TOTP sign-in, two requests per flow.
-- One connection per wrk thread, so this thread's state is one client's. Thread k of
-- {threads} takes lines k, k + {threads}, ... of {lines_name}: "<password body>\\t<code>".
local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} keystile_timespec;
int clock_gettime(int clock_id, keystile_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("keystile_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000000 + tonumber(timespec.tv_nsec) / 1000
end

local threads = {threads}
local sign_in_path = {sign_in_path}
local verify_path = {verify_path}
local lines_file = {lines_file}
local out_file = {out_file}
local script_headers = {{
{header_lines}
}}

local all_threads = {{}}
local next_index = 0
function setup(thread)
  thread:set("thread_index", next_index)
  next_index = next_index + 1
  all_threads[#all_threads + 1] = thread
end

local headers = {{}}
local users = {{}}
local position = 0
local phase = "password"
local mfa_token = nil
local started = 0
local first_us = 0
-- Globals, read by done() through thread:get.
flows = 0
password_failures = 0
verify_failures = 0
latencies = {{}}

function init(args)
  for key, value in pairs(wrk.headers) do headers[key] = value end
  for key, value in pairs(script_headers) do headers[key] = value end
  local line_index = 0
  for line in io.lines(lines_file) do
    if line_index % threads == thread_index then
      local body, code = line:match("^(.*)\\t(%d+)$")
      users[#users + 1] = {{body, code}}
    end
    line_index = line_index + 1
  end
  if #users == 0 then error("no users for wrk thread " .. thread_index) end
end

function request()
  started = now_us()
  if phase == "password" then
    -- wrk builds one request of thread 0 to check it and never sends it: that thread
    -- skips one user, which is harmless.
    position = position % #users + 1
    return wrk.format("POST", sign_in_path, headers, users[position][1])
  end
  local body = '{{"user":{{"mfa_token":"' .. mfa_token
    .. '","code":"' .. users[position][2] .. '"}}}}'
  return wrk.format("POST", verify_path, headers, body)
end

function response(status, response_headers, body)
  local elapsed = now_us() - started
  if phase == "password" then
    local token = status == 200 and body:match('"mfa_token"%s*:%s*"([^"]+)"')
    if token then
      mfa_token = token
      first_us = elapsed
      phase = "verify"
    else
      password_failures = password_failures + 1
    end
    return
  end
  phase = "password"
  if status == 200 and body:find('"token"', 1, true) then
    flows = flows + 1
    latencies[flows] = first_us + elapsed
  else
    verify_failures = verify_failures + 1
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(out_file, "w"))
  out:write(string.format("duration_us %d\\n", summary.duration))
  for _, thread in ipairs(all_threads) do
    local measured = thread:get("latencies")
    out:write(string.format("thread %d %d %d\\n", thread:get("flows"),
      thread:get("password_failures"), thread:get("verify_failures")))
    for i = 1, #measured do out:write(string.format("%.1f\\n", measured[i])) end
  end
  out:close()
end
"""


def flow_script(
    workdir: Path,
    accounts: Sequence[Account],
    *,
    threads: int,
    valid_for: float,
    headers: Mapping[str, str],
    name: str,
) -> tuple[LuaScript, Path]:
    """A wrk script running sign-in flows over ``accounts`` (codes of :func:`code_step`);
    and the file its ``done()`` writes the flows' figures to."""
    step = code_step(valid_for)
    lines_path = workdir / f"{name}.txt"
    lines_path.write_text(
        "".join(f"{account.sign_in_body()}\t{account.code(step)}\n" for account in accounts),
        encoding="utf-8",
    )
    out_path = workdir / f"{name}.flows"
    all_headers = {"Content-Type": "application/json", **headers}
    script = _FLOW_LUA.format(
        threads=threads,
        sign_in_path=lua_string(SIGN_IN),
        verify_path=lua_string(VERIFY),
        lines_name=lines_path.name,
        lines_file=lua_string(str(lines_path)),
        out_file=lua_string(str(out_path)),
        header_lines="\n".join(
            f"  [{lua_string(key)}] = {lua_string(value)}," for key, value in all_headers.items()
        ),
    )
    script_path = workdir / f"{name}.lua"
    script_path.write_text(script, encoding="utf-8")
    return LuaScript(script_path, threads, len(accounts)), out_path


def read_flows(path: Path, *, label: str, wrk: WrkResult, server_cpu: float) -> FlowResult:
    """The figures the flow script's ``done()`` wrote to ``path``.

    Raises:
        BenchmarkError: the file is missing or malformed.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise BenchmarkError(f"the flow script wrote no figures for {label}: {error}") from None
    if not lines or not lines[0].startswith("duration_us "):
        raise BenchmarkError(f"cannot read the flow figures for {label}")
    duration = int(lines[0].split()[1]) / 1e6
    latencies: list[float] = []
    password_failures = verify_failures = 0
    for line in lines[1:]:
        if line.startswith("thread "):
            _, _, failed_password, failed_verify = line.split()
            password_failures += int(failed_password)
            verify_failures += int(failed_verify)
        else:
            latencies.append(float(line) / 1000.0)
    return FlowResult(
        label, duration, latencies, password_failures, verify_failures, wrk, server_cpu
    )


def run_flows(
    server: Server,
    workdir: Path,
    accounts: Sequence[Account],
    *,
    label: str,
    seconds: int,
    clients: int,
    headers: Mapping[str, str],
    name: str,
    client: str = "wrk",
) -> FlowResult:
    """One run of sign-in flows, ``clients`` at once, over ``accounts``: by wrk, or by
    :func:`python_flows` when ``client`` is ``python``."""
    if client == "python":
        return python_flows(server, accounts, label=label, seconds=seconds, clients=clients)
    script, out_path = flow_script(
        workdir, accounts, threads=clients, valid_for=seconds + 15, headers=headers, name=name
    )
    cpu_before = server_cpu_seconds(server.pid)
    result = run_wrk(
        server.url(SIGN_IN),
        label=label,
        seconds=seconds,
        connections=clients,
        threads=clients,
        script=script,
        timeout_seconds=WRK_TIMEOUT_SECONDS,
    )
    server_cpu = server_cpu_seconds(server.pid) - cpu_before
    return read_flows(out_path, label=label, wrk=result, server_cpu=server_cpu)


def python_flows(
    server: Server, accounts: Sequence[Account], *, label: str, seconds: int, clients: int
) -> FlowResult:
    """Sign-in flows by a Python thread pool, the client of allauth's ``bench.py``.

    ``clients`` threads take the next account until ``seconds`` have passed or none is
    left; each request opens its own ``http.client.HTTPConnection`` and is timed from
    before it to its read answer; the code is computed after the password step for the
    time step of that moment, as allauth's client does. The client's cost (Python, on the
    same cores as the server) is in the figures, as it is in allauth's.
    """
    split = urlsplit(server.base_url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    lock = threading.Lock()
    pending = iter(accounts)
    latencies: list[float] = []
    failures = {"password": 0, "verify": 0}
    deadline = time.perf_counter() + seconds

    def post(path: str, body: object) -> tuple[int, dict[str, object], float]:
        started = time.perf_counter()
        connection = http.client.HTTPConnection(host, port, timeout=60)
        try:
            connection.request(
                "POST", path, body=compact_json(body), headers={"Content-Type": "application/json"}
            )
            answer = connection.getresponse()
            raw, status = answer.read(), answer.status
        finally:
            connection.close()
        elapsed = time.perf_counter() - started
        try:
            data = json.loads(raw)
        except ValueError:
            data = {}
        return status, data if isinstance(data, dict) else {}, elapsed

    def flow(account: Account) -> None:
        try:
            status, data, first = post(
                SIGN_IN, {"user": {"email": account.email, "password": account.password}}
            )
            token = data.get("mfa_token")
            if status != 200 or not isinstance(token, str):
                raise LookupError("password")
            code = account.code(int(time.time()) // PERIOD)
            status, data, second = post(VERIFY, {"user": {"mfa_token": token, "code": code}})
            if status != 200 or not data.get("token"):
                raise LookupError("verify")
        except (LookupError, OSError, http.client.HTTPException) as error:
            step = "password" if str(error) == "password" else "verify"
            with lock:
                failures[step] += 1
            return
        with lock:
            latencies.append(1000.0 * (first + second))

    def worker() -> None:
        while True:
            with lock:
                account = next(pending, None)
            if account is None or time.perf_counter() > deadline:
                return
            flow(account)

    cpu_before = server_cpu_seconds(server.pid)
    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    server_cpu = server_cpu_seconds(server.pid) - cpu_before
    return FlowResult(
        label, wall, latencies, failures["password"], failures["verify"], None, server_cpu
    )


def run_flow(args: argparse.Namespace, workdir: Path, env: Mapping[str, str]) -> int:
    """``--mode flow``: password + TOTP sign-ins next to the bare route; the exit status."""
    clients = args.clients
    headers = {} if args.keep_alive else {"Connection": "close"}
    connection = "keep-alive" if args.keep_alive else "a new connection per request"
    if args.client == "python":
        connection = "Python thread-pool client (allauth's), a new connection per request"
    with seeding_runtime(env) as runtime:
        check = seed_accounts(runtime, emails(CHECK_TAG, 1), with_tokens=False)[0]
        probe_accounts = seed_accounts(
            runtime,
            emails(PROBE_TAG, PROBE_USERS_PER_WORKER["flow"] * args.workers),
            with_tokens=False,
        )
        with running_server(workdir, env, workers=args.workers) as server:
            check_verify(server, check, password_step(server, check))
            probe = run_flows(
                server,
                workdir,
                probe_accounts,
                label="flows (probe)",
                seconds=PROBE_SECONDS,
                clients=clients,
                headers=headers,
                name="probe",
                client=args.client,
            )
            if probe.problems:
                progress(f"the probe run had errors ({', '.join(probe.problems)})")
            rate = probe.flows_per_second
            progress(f"probe: {rate:.0f} flows/s")
            warmup_count = users_for(rate, args.warmup, args.margin)
            run_count = args.users or users_for(rate, args.seconds, args.margin)
            progress(f"seeding {warmup_count} warm-up and {run_count} measured users")
            warmup_accounts = seed_accounts(
                runtime, emails(WARMUP_TAG, warmup_count), with_tokens=False
            )
            run_accounts = seed_accounts(runtime, emails(RUN_TAG, run_count), with_tokens=False)
            bare = measure(
                server.url("/bench/bare"),
                label="GET /bench/bare",
                seconds=args.seconds,
                connections=clients,
                threads=clients,
                headers=headers,
                warmup_seconds=args.warmup,
                timeout_seconds=WRK_TIMEOUT_SECONDS,
            )
            if args.warmup > 0:
                progress(f"warming up the flows for {args.warmup} s")
                run_flows(
                    server,
                    workdir,
                    warmup_accounts,
                    label="flows (warm-up)",
                    seconds=args.warmup,
                    clients=clients,
                    headers=headers,
                    name="warmup",
                    client=args.client,
                )
            progress(f"measuring the flows for {args.seconds} s with {clients} clients")
            flows = run_flows(
                server,
                workdir,
                run_accounts,
                label="password + TOTP flow",
                seconds=args.seconds,
                clients=clients,
                headers=headers,
                name="run",
                client=args.client,
            )
    return report_flows(args, bare, flows, run_count, rate, connection, server.log_path)


def report_flows(
    args: argparse.Namespace,
    bare: WrkResult,
    flows: FlowResult,
    run_count: int,
    probe_rate: float,
    connection: str,
    server_log: Path,
) -> int:
    """Print the flow figures next to the bare route's; the exit status."""
    print(
        "\npassword + TOTP sign-in (POST "
        f"{SIGN_IN} then POST {VERIFY}, a fresh user per flow) vs GET /bench/bare"
    )
    print(describe_environment())
    print(
        f"{args.workers} worker(s) · {args.clients} clients · "
        f"{connection} · {args.seconds} s after {args.warmup} s warm-up · SQLite · "
        f"rate-limit backend {RATE_LIMIT_BACKEND} · hash preset {HASH_PRESET} · "
        f"{run_count} measured users (probe {probe_rate:.0f} flows/s)"
    )
    print()
    print(
        f"{'':<22}  {'per s':>9}  {'p50 ms':>8}  {'p99 ms':>8}  {'completed':>9}  "
        f"{'failed':>7}  {'socket errors':>13}"
    )
    print(
        f"{'GET /bench/bare':<22}  {bare.requests_per_second:>9.1f}  {bare.p50_ms:>8.2f}  "
        f"{bare.p99_ms:>8.2f}  {bare.requests:>9}  {bare.non_2xx:>7}  "
        f"{bare.socket_errors.total:>13}"
    )
    failed = flows.password_failures + flows.verify_failures
    print(
        f"{'flows (2 requests)':<22}  {flows.flows_per_second:>9.1f}  "
        f"{flows.percentile(50):>8.2f}  {flows.percentile(99):>8.2f}  {flows.flows:>9}  "
        f"{failed:>7}  {flows.socket_errors:>13}"
    )
    print()
    failures = [
        f"{label}: {', '.join(problems)}"
        for label, problems in (("GET /bench/bare", bare.problems), (flows.label, flows.problems))
        if problems
    ]
    if flows.flows > run_count:
        failures.append(f"{flows.flows} flows over {run_count} users: raise --users")
    if failures:
        print("ratio: none; the runs had errors (see below)", file=sys.stdout)
        print("BENCHMARK FAILED: these figures are worthless:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        print(f"server log: {server_log}", file=sys.stderr)
        return 1
    print(
        f"measured run: {flows.flows} flows over {run_count} users; "
        f"{2 * flows.flows_per_second:.1f} requests/s in flows; "
        f"server CPU {flows.server_cpu_ms_per_flow:.2f} ms per flow"
    )
    per_bare = flows.flows_per_second / bare.requests_per_second
    print(
        f"ratio flow requests/s ÷ bare req/s: {2 * per_bare:.3f}"
        f"   flows/s ÷ bare req/s: {per_bare:.3f}"
    )
    return 0


# --- entry point ------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """The benchmark; its exit status."""
    require_wrk()
    with tempfile.TemporaryDirectory(prefix=f"keystile-bench-totp-{args.mode}-") as tmp:
        workdir = Path(tmp)
        env = benchmark_env(
            workdir,
            {
                "KEYSTILE_RATE_LIMIT_BACKEND": RATE_LIMIT_BACKEND,
                "KEYSTILE_PASSWORD_HASH_PRESET": HASH_PRESET,
                "KEYSTILE_PASSWORD_SIGN_IN_ADDRESS_RATE": ADDRESS_RATE,
            },
        )
        progress(
            f"mode {args.mode}; rate-limit backend {RATE_LIMIT_BACKEND}; hash preset "
            f"{HASH_PRESET}; per-address password rate {ADDRESS_RATE}; other limits default"
        )
        if args.mode == "step":
            return run_step(args, workdir, env)
        return run_flow(args, workdir, env)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the exit status."""
    return main_of(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
