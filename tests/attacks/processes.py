"""Running the ``keystile`` command as the attack tests' operator would, next to ``keystile serve``.

The server itself starts through :func:`tests.servers.keystile_server`; this
module is for the one-shot commands an operator runs beside it (``user
create``, ``db upgrade``, a ``serve`` expected to refuse). Like the server,
each gets only the ``KEYSTILE_*`` variables the test gives it, so nothing from
the caller's environment decides the outcome.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def keystile_command(
    cwd: Path, env: dict[str, str], *args: str, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``keystile *args`` in ``cwd`` with exactly the ``KEYSTILE_*`` settings in ``env``.

    Returns the finished process (output as text); never raises on a
    non-zero exit, which is what some tests want to see.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTILE_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "keystile", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )


def create_user(cwd: Path, env: dict[str, str], email: str, password: str) -> None:
    """``keystile user create EMAIL --password-stdin``, as an administrator would.

    Raises:
        AssertionError: the command failed (its stderr is in the message).
    """
    created = keystile_command(
        cwd, env, "user", "create", email, "--password-stdin", stdin=password + "\n"
    )
    assert created.returncode == 0, created.stderr
