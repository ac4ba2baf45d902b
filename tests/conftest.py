"""Shared fixtures: real databases (SQLite and PostgreSQL), Redis, settings, clock, app."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from keystile.clock import ManualClock
from keystile.settings import Settings
from keystile.store import migrate
from keystile.store.database import Database
from keystile.store.tables import metadata
from keystile.web.app import create_app
from tests.servers import LOOPBACK, postgres_server, redis_server

TEST_KEYS = {
    "signing_keys": ("s" * 40,),
    "hashing_keys": ("h" * 40,),
    "encryption_keys": ("e" * 40,),
}

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database for the whole session."""
    with postgres_server() as url:
        db = Database(url)
        migrate.upgrade(db)
        db.dispose()
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server for the whole session."""
    with redis_server() as url:
        yield url


def _truncate(url: str) -> None:
    db = Database(url)
    names = ", ".join(table.name for table in metadata.sorted_tables)
    with db.write() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    db.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """An empty, migrated database: a fresh SQLite file, or the truncated PostgreSQL one."""
    if request.param == "sqlite":
        path = tmp_path / "keystile.db"
        shutil.copyfile(sqlite_template, path)
        path.chmod(0o600)  # as Database creates it; production refuses a readable file
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate(url)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A :class:`Database` on each backend."""
    database = Database(database_url, pool_size=20)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves by hand."""
    return ManualClock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings with test keys, cheap hashing and the test database; override any field."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            **TEST_KEYS,
            "database_url": database_url,
            "password_hash_preset": "test",
            "keys_file": tmp_path / "keys.json",
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Default test settings."""
    return make_settings()


@pytest.fixture
def make_client(clock: ManualClock) -> Iterator[Callable[[Settings], TestClient]]:
    """Build a started TestClient for given settings; all are closed after the test."""
    clients: list[TestClient] = []

    def build(settings: Settings) -> TestClient:
        client = TestClient(create_app(settings, clock=clock), client=LOOPBACK)
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[[Settings], TestClient], settings: Settings) -> TestClient:
    """The app on each backend with default test settings."""
    return make_client(settings)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (anyio's pytest plugin)."""
    return "asyncio"
