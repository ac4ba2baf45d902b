"""A server process for tests and benchmarks: a free loopback port, a readiness poll, a sure stop.

One implementation of "start this command on 127.0.0.1, wait until it answers HTTP, and stop it
however the block ends", shared by the tests' ``keystile serve`` helper and the benchmarks'
uvicorn harness, so both start, wait and stop the same way (issue 8, item 10).

Not for production code paths: it picks a port that is free *now* (another process may take it
before the server binds it) and polls, both fine for a test and wrong for a deployment.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

LOOPBACK = "127.0.0.1"


class ServerStartError(RuntimeError):
    """The server exited, or did not answer, before it was ready; the message ends with its log."""


@dataclass(frozen=True)
class RunningServer:
    """A server started by :func:`serving`."""

    base_url: str
    """``http://127.0.0.1:PORT``, no trailing slash."""
    port: int
    pid: int
    """The PID of the started command, also its process group (it leads a new session)."""
    log_path: Path
    """Where its stdout and stderr go."""

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (which starts with ``/``) on this server."""
        return self.base_url + path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(
    command: Callable[[int], Sequence[str]],
    *,
    cwd: Path,
    env: Mapping[str, str],
    ready_path: str,
    log_path: Path | None = None,
    timeout: float = 60.0,
    grace: float = 15.0,
) -> Iterator[RunningServer]:
    """Run ``command(port)`` on a free loopback port until the block ends, then stop it.

    ``command`` gets the port and returns the command line, which must listen on
    127.0.0.1 at that port. It runs in ``cwd`` with exactly ``env`` as its environment, in a
    new session (so its own process group, holding any workers it forks), with its output in
    ``log_path`` (default ``cwd/server-PORT.log``, so servers sharing ``cwd`` keep apart logs).

    Ready means any HTTP answer to ``GET ready_path``, whatever the status: a path that
    answers 401 or 404 proves the server is up just as well as one that answers 200, and
    every mode of a server answers something.

    However the block ends (an exception, Ctrl-C, a failed start), the server is stopped:
    SIGTERM to its PID, which lets it shut down cleanly and stop its own workers; if it is
    still running after ``grace`` seconds, SIGKILL to its whole process group.

    Raises:
        ServerStartError: the process exited before answering, or did not answer within
            ``timeout`` seconds; the message ends with the tail of its log.
    """
    port = free_port()
    log_path = log_path if log_path is not None else cwd / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (the caller's own command, no shell)
            list(command(port)),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(f"http://{LOOPBACK}:{port}", port, process.pid, log_path)
    try:
        _wait_until_ready(process, server, ready_path, timeout)
        yield server
    finally:
        stop(process, grace)


def stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Stop a process started by :func:`serving`: SIGTERM to its PID, then, if it is still up
    after ``grace`` seconds, SIGKILL to its process group (its own, made by the new session,
    so this reaches its workers and nothing else)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        print(
            f"server {process.pid} ignored SIGTERM for {grace:.0f} s; killing it", file=sys.stderr
        )
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a server log, or a note saying there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"


def _wait_until_ready(
    process: subprocess.Popen[bytes], server: RunningServer, path: str, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ServerStartError(
                f"the server exited with status {process.returncode} before answering:\n"
                + log_tail(server.log_path)
            )
        try:
            httpx.get(server.url(path), timeout=2.0)
            return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"the server did not answer GET {path} within {timeout:.0f} s:\n"
                + log_tail(server.log_path)
            )
        time.sleep(0.1)
