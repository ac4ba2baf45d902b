"""The limiter contract suite runs once per backend, each on a real, empty store."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import delete

from keystile.store.database import Database
from keystile.store.tables import rate_limit_hits
from tests.limits.stores import LimiterStore

# Not built on the shared ``db`` fixture: it is parametrized over both SQL
# backends, which would multiply the memory and Redis cases too.
LIMITER_BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    pytest.param("redis", id="redis"),
]


@pytest.fixture(params=LIMITER_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LimiterStore:
    """An empty store on each backend.

    A fresh SQLite file, the session's PostgreSQL database emptied of hits,
    or a Redis key prefix no other test uses.
    """
    backend: str = request.param
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "keystile.db"
        shutil.copyfile(template, path)
        return LimiterStore(backend, url=f"sqlite:///{path}")
    if backend == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        db = Database(url)
        with db.write() as conn:
            conn.execute(delete(rate_limit_hits))
        db.dispose()
        return LimiterStore(backend, url=url)
    if backend == "redis":
        redis_url: str = request.getfixturevalue("redis_url")
        return LimiterStore(backend, url=redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    return LimiterStore(backend)
