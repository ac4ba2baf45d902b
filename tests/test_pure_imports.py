"""Pure modules import cheap: no web framework, database, Redis, HTTP client or event-loop library.

Core (DESIGN.md, layer 1) is what a reviewer reads in one sitting and what a
script or a test can use on its own; importing it must not cost FastAPI,
SQLAlchemy, Redis or httpx (0.7 s before the lazy ``keystile/__init__.py``).
Each module is imported in a fresh interpreter, since this test process has
them all loaded already. The layer contract (tests/test_layers.py) forbids
the imports statically; this checks what importing really loads, package
``__init__`` files included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("fastapi", "starlette", "sqlalchemy", "redis", "httpx", "anyio")
PACKAGE = Path(__file__).parent.parent / "src" / "keystile"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PURE_MODULES = sorted(
    {
        "keystile.identity",
        "keystile.tokens",
        "keystile.rates",
        "keystile.strategies.totp.rfc6238",
        "keystile.strategies.totp.uri",
        *(_module_name(path) for path in PACKAGE.glob("crypto/*.py")),
        *(_module_name(path) for path in PACKAGE.glob("strategies/*/core.py")),
        *(_module_name(path) for path in PACKAGE.glob("strategies/*/config.py")),
    }
)


def _heavy_after_import(module: str) -> list[str]:
    """The heavy top-level packages loaded by importing ``module`` in a new interpreter."""
    script = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps(sorted(n for n in {HEAVY!r} if n in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_the_list_covers_every_strategy_core_and_crypto_module() -> None:
    """The globs found the modules the issue names (so the parametrisation below is not empty)."""
    assert {
        "keystile.crypto.hashing",
        "keystile.strategies.otp.core",
        "keystile.strategies.otp.config",
        "keystile.strategies.totp.core",
        "keystile.strategies.recovery_code.core",
        "keystile.strategies.recovery_code.config",
    } <= set(PURE_MODULES)


@pytest.mark.parametrize("module", PURE_MODULES)
def test_a_pure_module_loads_no_heavy_library(module: str) -> None:
    """After importing only ``module``, none of FastAPI, Starlette, SQLAlchemy, Redis, httpx
    and anyio is in ``sys.modules``."""
    assert _heavy_after_import(module) == []


def test_the_check_sees_a_heavy_import() -> None:
    """The same check on an edge module reports what it loads: the test above can fail."""
    assert {"fastapi", "starlette", "sqlalchemy"} <= set(_heavy_after_import("keystile.web.app"))
