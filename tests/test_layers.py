"""DESIGN.md's layer order holds: ``lint-imports`` keeps every contract of pyproject.toml.

The contracts (``[tool.importlinter]`` in pyproject.toml) say which layer each
module belongs to and what it may import; this test runs them, so an upward
import fails ``scripts/test`` and CI like any other defect.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(
    cwd: Path, *, python_path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if python_path is not None:
        env["PYTHONPATH"] = str(python_path)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _contract(contract_id: str) -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return next(contract for contract in contracts if contract["id"] == contract_id)


def test_every_contract_is_kept() -> None:
    """``lint-imports`` exits 0: no module imports a layer above its own."""
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        pytest.param(
            "identity.py",
            "import keystile.flows.sign_in",
            "keystile.identity is not allowed to import keystile.flows",
            id="core-imports-a-flow",
        ),
        pytest.param(
            "store/users.py",
            "import keystile.strategies.attempts",
            "keystile.store is not allowed to import keystile.strategies.attempts",
            id="adapter-imports-a-service",
        ),
        pytest.param(
            "strategies/otp/service.py",
            "import keystile.web.guards",
            "keystile.strategies.otp.service is not allowed to import keystile.web",
            id="service-imports-the-edge",
        ),
        pytest.param(
            "strategies/otp/service.py",
            "import keystile.strategies.password.service",
            "keystile.strategies.otp is not allowed to import keystile.strategies.password",
            id="strategy-imports-another",
        ),
        pytest.param(
            "strategies/otp/core.py",
            "import sqlalchemy",
            "keystile.strategies.otp.core is not allowed to import sqlalchemy",
            id="core-imports-a-database-library",
        ),
        pytest.param(
            "tokens.py",
            "from keystile.clock import SystemClock",
            "keystile.tokens is not allowed to import keystile.clock",
            id="core-reads-the-clock",
        ),
    ],
)
def test_an_upward_import_breaks_the_build(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    """The same contracts, run over a copy of the package with one forbidden import added,
    fail and name it: the test above can fail."""
    package = tmp_path / "keystile"
    shutil.copytree(
        ROOT / "src" / "keystile", package, ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = package / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")

    result = _lint_imports(tmp_path, python_path=tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in " ".join(result.stdout.split()), result.stdout


def test_every_module_of_a_strategy_folder_has_a_layer() -> None:
    """A strategy folder mixes layers (routes are edges, services are services, core is core),
    so the layers contract names its modules one by one; a new module must be placed too."""
    contract = _contract("layers")
    (container,) = contract["containers"]
    placed = {
        f"{container}.{name.strip().strip('()')}"
        for layer in contract["layers"]
        for name in layer.replace("|", ":").split(":")
    }
    strategies = ROOT / "src" / "keystile" / "strategies"
    unplaced = [
        f"keystile.strategies.{path.parent.name}.{path.stem}"
        for path in sorted(strategies.glob("*/*.py"))
        if path.stem != "__init__"
        and f"keystile.strategies.{path.parent.name}.{path.stem}" not in placed
    ]
    assert unplaced == []
    assert "keystile.strategies.otp.routes" in placed  # the parsing above found the names
