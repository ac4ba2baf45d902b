"""keystile.testing_server.serving: a failed start says why; the stop reaches the whole group."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx
import pytest

from keystile.testing_server import ServerStartError, serving

# An HTTP server that ignores SIGTERM and forks a helper process, as uvicorn's workers are.
STUBBORN = """
import http.server, signal, subprocess, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open("helper.pid", "w").write(str(helper.pid))
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.BaseHTTPRequestHandler
).serve_forever()
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_server_that_exits_before_answering_fails_with_its_status_and_log(
    tmp_path: Path,
) -> None:
    """A command that exits before answering raises ServerStartError naming its exit status and
    ending with what it printed; the block's body never runs."""
    command = [sys.executable, "-c", "import sys; print('port taken, giving up'); sys.exit(3)"]
    with (
        pytest.raises(ServerStartError) as raised,
        serving(lambda port: command, cwd=tmp_path, env=dict(os.environ), ready_path="/"),
    ):
        pytest.fail("the block ran without a server")
    assert "exited with status 3" in str(raised.value)
    assert str(raised.value).endswith("port taken, giving up")


def test_a_server_that_ignores_sigterm_is_killed_with_its_process_group(tmp_path: Path) -> None:
    """Any HTTP answer (here 501) counts as ready; when the block ends, a server that ignores
    SIGTERM is killed after the grace period together with the process it forked."""
    with serving(
        lambda port: [sys.executable, "-c", STUBBORN, str(port)],
        cwd=tmp_path,
        env=dict(os.environ),
        ready_path="/",
        grace=1.0,
    ) as server:
        assert httpx.get(server.url("/")).status_code == 501
        helper = int((tmp_path / "helper.pid").read_text())
        assert _alive(server.pid)
        assert _alive(helper)
    assert not _alive(server.pid)
    deadline = time.monotonic() + 10
    while _alive(helper):  # the group's SIGKILL reaches it at once; allow for scheduling
        assert time.monotonic() < deadline, "the forked helper outlived the server"
        time.sleep(0.05)
