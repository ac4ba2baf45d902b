"""Reusable pieces for Keystile benchmarks.

A benchmark is one small script (see ``bench_me.py``) that:

1. checks that ``wrk`` is installed (:func:`require_wrk`),
2. makes a temporary directory and its ``KEYSTILE_*`` environment (:func:`benchmark_env`),
3. prepares data with the real CLI (:func:`create_user`),
4. starts ``benchmarks/app.py`` under uvicorn on 127.0.0.1 (:func:`running_server`, which
   always stops it again),
5. measures the bare baseline and its target route in the same run, with the same
   connections and duration (:func:`measure`, over :func:`run_wrk`),
6. prints both and their ratio, and gets its exit status from :func:`report`:
   non-zero when any measured route answered errors or lost sockets.

Routes that need a different request each time (one-time codes, for instance) get a Lua
script from :func:`write_body_cycle_script`; ``bench_echo.py`` shows and checks it.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import httpx

from keystile import testing_server

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCHMARKS_DIR.parent
LOOPBACK = testing_server.LOOPBACK
WRK_THREADS = 2
WRK_INSTALL_HINT = "apt-get install wrk"
APP = "app:create"
"""The uvicorn factory, imported from :data:`BENCHMARKS_DIR` (``--app-dir``)."""


class BenchmarkError(Exception):
    """The benchmark could not run; the message says why and, where known, what to do."""


# --- environment -------------------------------------------------------------------------


def require_wrk() -> str:
    """The path of ``wrk``.

    Raises:
        BenchmarkError: ``wrk`` is not on ``PATH``.
    """
    path = shutil.which("wrk")
    if path is None:
        raise BenchmarkError(
            f"wrk is not installed (not found on PATH): install it with `{WRK_INSTALL_HINT}`"
        )
    return path


def load_options(description: str) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes.

    ``--seconds`` (measured run per route), ``--connections``, ``--workers`` (uvicorn
    processes) and ``--warmup`` (seconds per route); :func:`check_load_options` checks them.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=int, default=10, help="measured wrk run per route")
    parser.add_argument("--connections", type=int, default=16, help="open HTTP connections")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--warmup", type=int, default=2, help="wrk warm-up seconds per route")
    return parser


def add_rate_limit_backend(parser: argparse.ArgumentParser) -> None:
    """``--rate-limit-backend {database,memory}``, the server's ``KEYSTILE_RATE_LIMIT_BACKEND``."""
    parser.add_argument(
        "--rate-limit-backend",
        choices=("database", "memory"),
        default="database",
        help="KEYSTILE_RATE_LIMIT_BACKEND for the server (Keystile's default: database)",
    )


def check_load_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error when the options of :func:`load_options` are out of range."""
    if args.seconds < 1 or args.connections < 2 or args.workers < 1 or args.warmup < 0:
        parser.error("need --seconds >= 1, --connections >= 2, --workers >= 1, --warmup >= 0")


def main_of(
    run: Callable[[argparse.Namespace], int],
    parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
    argv: Sequence[str] | None,
) -> int:
    """A benchmark's entry point: exit status 2, with one line, when it could not run."""
    install_sigterm_handler()
    try:
        return run(parse_args(argv))
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def install_sigterm_handler() -> None:
    """Make SIGTERM unwind like Ctrl-C, so every ``finally`` (server stop) still runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def benchmark_env(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the CLI and the server: Keystile state lives in ``workdir``.

    Inherited ``KEYSTILE_*`` variables are dropped so a run does not depend on the caller's
    shell; pass deliberate ones in ``extra``.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("KEYSTILE_")}
    env.update(
        {
            "KEYSTILE_MODE": "development",
            "KEYSTILE_DATABASE_URL": f"sqlite:///{workdir / 'keystile.db'}",
            "KEYSTILE_KEYS_FILE": str(workdir / "keys.json"),
        }
    )
    env.update(extra or {})
    return env


def keystile_command() -> list[str]:
    """The ``keystile`` console script of the running interpreter's environment."""
    beside = Path(sys.executable).parent / "keystile"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("keystile")
    if found is None:
        raise BenchmarkError("the `keystile` command is not installed: run `pip install -e .`")
    return [found]


def create_user(email: str, password: str, *, env: Mapping[str, str], cwd: Path) -> None:
    """``keystile user create EMAIL --password-stdin``, the password piped in.

    Raises:
        BenchmarkError: the command failed.
    """
    command = [*keystile_command(), "user", "create", email, "--password-stdin"]
    result = subprocess.run(
        command,
        input=password + "\n",
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise BenchmarkError(
            f"`keystile user create` exited with status {result.returncode}: "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )


def describe_environment() -> str:
    """One line for a results table: what ran where."""
    commit = _git("rev-parse", "--short", "HEAD")
    if commit and _git("status", "--porcelain"):
        commit += "+uncommitted"
    return " · ".join(
        [
            datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            f"commit {commit or 'unknown'}",
            f"{os.cpu_count()} CPUs",
            f"python {sys.version.split()[0]}",
            f"fastapi {version('fastapi')}",
            f"uvicorn {version('uvicorn')}",
            f"wrk {wrk_version()}",
        ]
    )


def wrk_version() -> str:
    """wrk's version, as ``wrk -v`` prints it."""
    result = subprocess.run(
        [require_wrk(), "-v"], capture_output=True, text=True, timeout=10, check=False
    )
    match = re.search(r"wrk (\S+)", result.stdout + result.stderr)
    return match.group(1) if match else "unknown"


def _git(*args: str) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(REPO_DIR), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


# --- server -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A running benchmark server."""

    base_url: str
    pid: int
    workers: int
    log_path: Path

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    return testing_server.free_port()


@contextmanager
def running_server(
    workdir: Path,
    env: Mapping[str, str],
    *,
    workers: int = 1,
    app: str = APP,
    ready_path: str = "/bench/bare",
    start_timeout: float = 60.0,
) -> Iterator[Server]:
    """Run ``app`` under uvicorn on 127.0.0.1 until the block ends, then stop it.

    The server runs in ``workdir`` with ``env`` and its output goes to
    ``workdir/server.log``. Ready is any HTTP answer to ``ready_path``. Starting, waiting
    and stopping (SIGTERM to its PID, then SIGKILL to its process group, however the block
    ends) are :func:`keystile.testing_server.serving`, the same as the tests' servers.

    Raises:
        BenchmarkError: the server exited or did not answer ``ready_path`` in time.
    """

    def command(port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--factory",
            "--app-dir",
            str(BENCHMARKS_DIR),
            "--workers",
            str(workers),
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]

    try:
        with testing_server.serving(
            command,
            cwd=workdir,
            env=env,
            ready_path=ready_path,
            log_path=workdir / "server.log",
            timeout=start_timeout,
        ) as running:
            yield Server(running.base_url, running.pid, workers, running.log_path)
    except testing_server.ServerStartError as error:
        raise BenchmarkError(str(error)) from None


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its children, from ``/proc``.

    As allauth's ``bench.py`` counts its gunicorn master and workers, so "server CPU per
    request" compares the servers' work whatever each client costs. Read it before and
    after a run; the difference is the run's.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


# --- sizing single-use data ---------------------------------------------------------------


MIN_USERS = 200
"""The fewest single-use identities :func:`users_for` sizes a run for."""


def users_for(rate: float, seconds: int, margin: float) -> int:
    """Identities enough for ``margin`` times what ``rate`` uses in ``seconds`` (one each)."""
    return max(MIN_USERS, math.ceil(margin * rate * seconds))


def probe_rate(result: WrkResult, what: str) -> float:
    """The completed requests per second of a probe run, said on standard error.

    A probe that had errors still sizes the run (its rate is a rate of answers), with a note.
    """
    if result.problems:
        _progress(f"the probe run had errors ({', '.join(result.problems)}); sizing from its rate")
    rate = result.requests / max(result.duration_seconds, 0.001)
    _progress(f"probe: {rate:.0f} {what}/s")
    return rate


# --- HTTP helpers ---------------------------------------------------------------------------


def expect_status(
    method: str,
    url: str,
    status: int = 200,
    *,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
) -> httpx.Response:
    """One request, which must answer ``status``.

    Raises:
        BenchmarkError: another status, or no answer.
    """
    try:
        response = httpx.request(method, url, headers=headers, json=json, timeout=30.0)
    except httpx.HTTPError as error:
        raise BenchmarkError(f"{method} {url} failed: {error}") from None
    if response.status_code != status:
        raise BenchmarkError(
            f"{method} {url} answered {response.status_code}, expected {status}: "
            f"{response.text[:300]}"
        )
    return response


def password_sign_in(server: Server, email: str, password: str, *, prefix: str = "/auth") -> str:
    """Sign in over HTTP; the session token.

    Raises:
        BenchmarkError: the sign-in did not answer 200 with a token.
    """
    response = expect_status(
        "POST",
        server.url(f"{prefix}/user/password/sign_in"),
        json={"user": {"email": email, "password": password}},
    )
    token = response.json().get("token")
    if not isinstance(token, str) or not token:
        raise BenchmarkError("the sign-in answer has no `token`")
    return token


# --- wrk ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SocketErrors:
    """wrk's ``Socket errors:`` line (absent when all are zero)."""

    connect: int = 0
    read: int = 0
    write: int = 0
    timeout: int = 0

    @property
    def total(self) -> int:
        """All socket errors."""
        return self.connect + self.read + self.write + self.timeout

    def __str__(self) -> str:
        return (
            f"connect {self.connect}, read {self.read}, write {self.write}, timeout {self.timeout}"
        )


@dataclass(frozen=True)
class WrkResult:
    """The figures of one wrk run."""

    label: str
    requests: int
    duration_seconds: float
    requests_per_second: float
    latency_ms: Mapping[int, float]
    """Latency percentiles from ``--latency``: 50, 75, 90, 99."""
    non_2xx: int
    """wrk's ``Non-2xx or 3xx responses`` (it counts statuses of 400 and above)."""
    socket_errors: SocketErrors

    @property
    def p50_ms(self) -> float:
        """Median latency, milliseconds."""
        return self.latency_ms[50]

    @property
    def p99_ms(self) -> float:
        """99th percentile latency, milliseconds."""
        return self.latency_ms[99]

    @property
    def problems(self) -> list[str]:
        """Why these figures are worthless; empty when they are sound."""
        found = []
        if self.requests == 0:
            found.append("no request completed")
        if self.non_2xx:
            found.append(f"{self.non_2xx} non-2xx responses")
        if self.socket_errors.total:
            found.append(f"socket errors ({self.socket_errors})")
        return found


_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


def parse_wrk_output(text: str, *, label: str) -> WrkResult:
    """The figures of wrk's ``--latency`` report.

    Raises:
        BenchmarkError: the text is not a complete wrk report.
    """
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    total = re.search(rf"^\s*(\d+) requests in {_TIME}", text, re.MULTILINE)
    latency = {
        int(match.group(1)): float(match.group(2)) * _TIME_UNITS_MS[match.group(3)]
        for match in re.finditer(rf"^\s+(50|75|90|99)%\s+{_TIME}\s*$", text, re.MULTILINE)
    }
    if rate is None or total is None or set(latency) != {50, 75, 90, 99}:
        raise BenchmarkError(f"cannot read wrk's report for {label}:\n{text}")
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = SocketErrors(*(int(n) for n in sockets.groups())) if sockets else SocketErrors()
    return WrkResult(
        label=label,
        requests=int(total.group(1)),
        duration_seconds=float(total.group(2)) * _TIME_UNITS_MS[total.group(3)] / 1000.0,
        requests_per_second=float(rate.group(1)),
        latency_ms=latency,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=errors,
    )


@dataclass(frozen=True)
class LuaScript:
    """A wrk script written by :func:`write_body_cycle_script`."""

    path: Path
    threads: int
    """The wrk thread count it splits its bodies for; :func:`run_wrk` must use the same."""
    bodies: int


def write_body_cycle_script(
    directory: Path,
    bodies: Iterable[str],
    *,
    path: str,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    threads: int = WRK_THREADS,
    name: str = "bodies",
) -> LuaScript:
    """Write a wrk script that sends ``method path`` with a different body each request.

    The bodies go to ``directory/<name>.txt``, one a line, and ``directory/<name>.lua``
    reads them. wrk thread *k* of ``threads`` sends lines *k*, *k + threads*, … in turn and
    starts over at the end of its share, so no two threads send the same body and, as long
    as the run needs fewer requests than there are bodies, no body is sent twice (for
    single-use values such as one-time codes, generate more bodies than the run can use).
    wrk builds one request of thread 0 at start-up to check it and never sends it.

    ``headers`` (default ``Content-Type: application/json``) add to and override those
    given to :func:`run_wrk`.

    Raises:
        ValueError: a body holds a line break, or there are fewer bodies than threads.
    """
    data_path = directory / f"{name}.txt"
    count = 0
    with data_path.open("w", encoding="utf-8") as handle:
        for body in bodies:
            if "\n" in body or "\r" in body:
                raise ValueError("a request body for wrk must hold no line break")
            handle.write(body + "\n")
            count += 1
    if count < threads:
        raise ValueError(f"need at least {threads} bodies (one per wrk thread), got {count}")
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    header_lines = "\n".join(
        f"  [{lua_string(key)}] = {lua_string(value)}," for key, value in all_headers.items()
    )
    script = f"""\
-- Written by benchmarks/harness.py (write_body_cycle_script): {method} {path},
-- one body per request from {data_path.name}, wrk thread k of {threads} taking lines
-- k, k + {threads}, ... and starting over at the end of its share.
local threads = {threads}
local method = {lua_string(method)}
local path = {lua_string(path)}
local bodies_file = {lua_string(str(data_path))}
local script_headers = {{
{header_lines}
}}

local next_index = 0
function setup(thread)
  thread:set("thread_index", next_index)
  next_index = next_index + 1
end

local headers = {{}}
local bodies = {{}}
local position = 0

function init(args)
  for key, value in pairs(wrk.headers) do headers[key] = value end
  for key, value in pairs(script_headers) do headers[key] = value end
  local line_index = 0
  for line in io.lines(bodies_file) do
    if line_index % threads == thread_index then bodies[#bodies + 1] = line end
    line_index = line_index + 1
  end
  if #bodies == 0 then error("no request bodies for wrk thread " .. thread_index) end
end

function request()
  position = position % #bodies + 1
  return wrk.format(method, path, headers, bodies[position])
end
"""
    script_path = directory / f"{name}.lua"
    script_path.write_text(script, encoding="utf-8")
    return LuaScript(script_path, threads, count)


def lua_string(text: str) -> str:
    """A Lua string literal for ``text``: printable ASCII as is, every other byte escaped."""
    parts = [
        chr(byte) if 32 <= byte < 127 and byte not in (34, 92) else f"\\{byte:03d}"
        for byte in text.encode()
    ]
    return '"' + "".join(parts) + '"'


def run_wrk(
    url: str,
    *,
    label: str,
    seconds: int,
    connections: int,
    threads: int = WRK_THREADS,
    headers: Mapping[str, str] | None = None,
    script: LuaScript | None = None,
    timeout_seconds: int | None = None,
) -> WrkResult:
    """Run ``wrk --latency`` against ``url`` (on 127.0.0.1) and read its report.

    ``timeout_seconds`` is wrk's per-request timeout (its default is 2 s); a request
    slower than that counts as a socket timeout error.

    Raises:
        BenchmarkError: wrk is missing, failed, or printed no report.
        ValueError: ``url`` is not on 127.0.0.1, or ``script`` was written for other threads.
    """
    if urlsplit(url).hostname != LOOPBACK:
        raise ValueError(f"benchmarks load 127.0.0.1 only, not {url}")
    if script is not None and script.threads != threads:
        raise ValueError(
            f"the script splits its bodies for {script.threads} threads, not {threads}"
        )
    if connections < threads:
        raise ValueError(f"wrk needs at least one connection per thread ({threads})")
    command = [
        require_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
    ]
    if timeout_seconds is not None:
        command += ["--timeout", f"{timeout_seconds}s"]
    if script is not None:
        command += ["-s", str(script.path)]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"wrk did not finish within {seconds + 60} s for {label}") from None
    if result.returncode != 0:
        raise BenchmarkError(
            f"wrk exited with status {result.returncode} for {label}: "
            f"{(result.stderr + result.stdout).strip()}"
        )
    if result.stderr.strip():
        # Lua errors in a script are printed here while wrk carries on.
        print(f"wrk ({label}) said: {result.stderr.strip()}", file=sys.stderr)
    return parse_wrk_output(result.stdout, label=label)


def measure(
    url: str,
    *,
    label: str,
    seconds: int,
    connections: int,
    warmup_seconds: int = 2,
    headers: Mapping[str, str] | None = None,
    script: LuaScript | None = None,
    warmup_script: LuaScript | None = None,
    threads: int = WRK_THREADS,
    timeout_seconds: int | None = None,
) -> WrkResult:
    """A warm-up run (figures discarded) and then the measured run, each with wrk.

    ``warmup_script`` defaults to ``script``; give single-use bodies their own warm-up list.
    ``timeout_seconds`` is wrk's per-request timeout (see :func:`run_wrk`).
    """
    if warmup_seconds > 0:
        _progress(f"warming up {label} for {warmup_seconds} s")
        run_wrk(
            url,
            label=f"{label} (warm-up)",
            seconds=warmup_seconds,
            connections=connections,
            threads=threads,
            headers=headers,
            script=warmup_script or script,
            timeout_seconds=timeout_seconds,
        )
    _progress(f"measuring {label} for {seconds} s with {connections} connections")
    return run_wrk(
        url,
        label=label,
        seconds=seconds,
        connections=connections,
        threads=threads,
        headers=headers,
        script=script,
        timeout_seconds=timeout_seconds,
    )


def _progress(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


# --- report ---------------------------------------------------------------------------------


def format_table(results: Sequence[WrkResult]) -> str:
    """The figures of ``results``, one row each."""
    width = max(len("endpoint"), *(len(result.label) for result in results))
    lines = [
        f"{'endpoint':<{width}}  {'req/s':>9}  {'p50 ms':>8}  {'p99 ms':>8}  "
        f"{'requests':>9}  {'non-2xx':>7}  {'socket errors':>13}"
    ]
    lines += [
        f"{r.label:<{width}}  {r.requests_per_second:>9.1f}  {r.p50_ms:>8.2f}  "
        f"{r.p99_ms:>8.2f}  {r.requests:>9}  {r.non_2xx:>7}  {r.socket_errors.total:>13}"
        for r in results
    ]
    return "\n".join(lines)


def report(
    title: str,
    settings: str,
    baseline: WrkResult,
    target: WrkResult,
    *,
    server_log: Path | None = None,
) -> int:
    """Print the table and the ratio of ``target`` to ``baseline``; the exit status.

    The status is 1 when either run has errors (non-2xx answers, socket errors, no
    requests): figures of error answers are worthless, and the message says so loudly,
    with the end of ``server_log``.
    """
    print(f"\n{title}")
    print(describe_environment())
    print(settings)
    print()
    print(format_table([baseline, target]))
    print()
    failures = [
        f"{result.label}: {', '.join(result.problems)}"
        for result in (baseline, target)
        if result.problems
    ]
    if failures:
        print("ratio: none; the runs had errors (see below)")
    else:
        print(
            f"ratio {target.label} ÷ {baseline.label}:  "
            f"req/s {target.requests_per_second / baseline.requests_per_second:.3f}  "
            f"(1.000 = as fast as bare)   "
            f"p99 x{target.p99_ms / baseline.p99_ms:.2f}  (x1.00 = no added tail latency)"
        )
    if not failures:
        return 0
    rule = "!" * 78
    print(f"\n{rule}", file=sys.stderr)
    print("BENCHMARK FAILED: these figures are worthless (they measure errors):", file=sys.stderr)
    for failure in failures:
        print(f"  {failure}", file=sys.stderr)
    if server_log is not None:
        print(f"End of the server log:\n{testing_server.log_tail(server_log)}", file=sys.stderr)
    print(rule, file=sys.stderr)
    return 1
