"""The SQLite file is created owner-only, and production refuses a readable one."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from keystile.errors import ConfigurationError
from keystile.runtime import Runtime
from keystile.settings import Settings
from keystile.store.database import Database

KEYS: dict[str, Any] = {
    name: (name[0] * 32,) for name in ("signing_keys", "hashing_keys", "encryption_keys")
}


def test_database_file_is_created_0600(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    old = os.umask(0o022)
    try:
        db = Database(f"sqlite:///{path}")
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir() if p.is_file()}
        db.dispose()
    finally:
        os.umask(old)
    assert modes["k.db"] == 0o600
    assert all(mode == 0o600 for mode in modes.values()), modes


def test_production_refuses_readable_database_file(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    path.touch()
    path.chmod(0o644)
    settings = Settings(
        **KEYS,
        mode="production",
        database_url=f"sqlite:///{path}",
        sender="smtp",  # so that the file is the one problem of this configuration
        smtp_host="127.0.0.1",
    )
    with pytest.raises(ConfigurationError) as caught:
        Runtime(settings)
    (problem,) = caught.value.problems
    assert "KEYSTILE_DATABASE_URL" in problem
    assert f"chmod 600 {path}" in problem
