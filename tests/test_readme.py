"""Every Python block of README.md runs, as a host app would, on a temporary database.

Each block is a complete program. It runs in a temporary directory with the
``KEYSTILE_*`` variables a host would set (a SQLite file there, test keys, the
cheap ``test`` password preset), with ``__name__ == "__main__"``; a block with
top-level ``await`` runs inside an event loop. A block that serves its app
with uvicorn is loaded under another name instead (so ``uvicorn.run`` does not
start), and its ``app`` is driven with Starlette's TestClient: its lifespan
prepares the database, a user is created with the CLI as the README shows,
and each route the README defines answers as documented.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from keystile.errors import AuthenticationFailedError
from tests.conftest import TEST_KEYS

README = Path(__file__).parent.parent / "README.md"
KEYSTILE_CLI = Path(sys.executable).parent / "keystile"
EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced ``python`` block: the section it is in, its first line in README.md, its code."""

    section: str
    line: int
    code: str

    @property
    def serves(self) -> bool:
        """Whether running it as a program would start a server."""
        return "uvicorn.run(" in self.code

    @property
    def id(self) -> str:
        return f"{re.sub(r'[^a-z0-9]+', '-', self.section.lower()).strip('-')}-line-{self.line}"


def python_blocks(text: str) -> list[Block]:
    """The ``python`` blocks of a Markdown ``text``, each with its nearest heading."""
    blocks: list[Block] = []
    section = ""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        if line.strip() == "```python":
            end = lines.index("```", index + 1)
            code = "\n".join(lines[index + 1 : end]) + "\n"
            blocks.append(Block(section=section, line=index + 2, code=code))
            index = end
        index += 1
    return blocks


BLOCKS = python_blocks(README.read_text())
PROGRAMS = [block for block in BLOCKS if not block.serves]
SERVED = [block for block in BLOCKS if block.serves]


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A host's working directory and environment: an empty SQLite database, test keys."""
    environment = {
        "KEYSTILE_MODE": "development",
        "KEYSTILE_DATABASE_URL": f"sqlite:///{tmp_path / 'keystile.db'}",
        "KEYSTILE_SIGNING_KEYS": TEST_KEYS["signing_keys"][0],
        "KEYSTILE_HASHING_KEYS": TEST_KEYS["hashing_keys"][0],
        "KEYSTILE_ENCRYPTION_KEYS": TEST_KEYS["encryption_keys"][0],
        "KEYSTILE_PASSWORD_HASH_PRESET": "test",
    }
    for name in [name for name in os.environ if name.startswith("KEYSTILE_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return environment


def run_block(block: Block, directory: Path, *, name: str = "__main__") -> dict[str, Any]:
    """Run ``block`` as module ``name`` (from a file, so a traceback shows its lines); its
    namespace afterwards."""
    path = directory / f"readme_line_{block.line}.py"
    path.write_text(block.code)
    code = compile(block.code, str(path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, Any] = {"__name__": name, "__file__": str(path)}
    if inspect.CO_COROUTINE & code.co_flags:
        asyncio.run(eval(code, namespace))  # noqa: S307 -- the README's own code
    else:
        exec(code, namespace)  # noqa: S102 -- the README's own code
    return namespace


def test_the_readme_has_python_blocks() -> None:
    """The extraction finds the blocks (so the parametrised tests below are not empty), and
    exactly one of them serves, which the TestClient test drives."""
    assert len(PROGRAMS) >= 1
    assert [block.section for block in SERVED] == ["As a library"]


@pytest.mark.parametrize("block", PROGRAMS, ids=[block.id for block in PROGRAMS])
def test_a_program_block_runs(
    block: Block, host: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The block runs to its end without an exception on a fresh database."""
    run_block(block, tmp_path)
    assert "Traceback" not in capsys.readouterr().err


def test_the_no_http_program_signs_in_twice(
    host: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The runtime example prints what its comments say: a password, then a code sign-in."""
    (block,) = [block for block in PROGRAMS if "Runtime(" in block.code]
    run_block(block, tmp_path)
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"{EMAIL} ('password',)", f"{EMAIL} ('otp',)"]


def test_a_broken_block_fails(host: dict[str, str], tmp_path: Path) -> None:
    """A block whose sign-in is wrong raises out of the runner: a broken README fails here."""
    (block,) = [block for block in PROGRAMS if "Runtime(" in block.code]
    broken = Block(
        section=block.section,
        line=block.line,
        code=block.code.replace(
            'sign_in.password("Alice@Example.com", "correct horse battery")',
            'sign_in.password("Alice@Example.com", "wrong horse battery")',
        ),
    )
    assert broken.code != block.code
    with pytest.raises(AuthenticationFailedError):
        run_block(broken, tmp_path)


def _create_user(environment: dict[str, str], directory: Path) -> None:
    """``keystile user create … --password-stdin``, as the README's curl section does."""
    subprocess.run(
        [str(KEYSTILE_CLI), "user", "create", EMAIL, "--password-stdin"],
        input=f"{PASSWORD}\n",
        env={**os.environ, **environment},
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.mark.parametrize("block", SERVED, ids=[block.id for block in SERVED])
def test_the_host_app_answers_as_documented(
    block: Block, host: dict[str, str], tmp_path: Path
) -> None:
    """The library example's app: its lifespan prepares the database, Keystile signs in under
    /auth, the host's routes are guarded by ``require_user``, ``current_session`` and the
    authentication backend, and anonymous callers get Keystile's 401 or the guest answer."""
    namespace = run_block(block, tmp_path, name="readme_host_app")
    app = namespace["app"]
    assert isinstance(app, FastAPI)

    with TestClient(app) as client:  # the lifespan: keystile.prepare() migrates
        _create_user(host, tmp_path)
        signed_in = client.post(
            "/auth/user/password/sign_in", json={"user": {"email": EMAIL, "password": PASSWORD}}
        )
        assert signed_in.status_code == 200, signed_in.text
        bearer = {"authorization": f"Bearer {signed_in.json()['token']}"}

        notes = client.get("/notes", headers=bearer)
        assert (notes.status_code, notes.json()) == (200, {"owner": EMAIL})
        session = client.get("/session", headers=bearer)
        assert session.status_code == 200
        assert session.json()["signed_in_at"].startswith("20")
        dashboard = client.get("/dashboard", headers=bearer)
        assert (dashboard.status_code, dashboard.json()) == (200, {"user": EMAIL})

        anonymous = client.get("/notes")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "unauthenticated"
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/session").status_code == 401
        guest = client.get("/dashboard")
        assert (guest.status_code, guest.json()) == (200, {"user": "guest"})
