"""A database nobody migrated says so, naming ``keystile db upgrade``; callers see a bare 503."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from keystile import Keystile, SchemaOutdatedError
from keystile.settings import Settings
from keystile.store import migrate
from keystile.store.database import Database
from keystile.web.errors import is_missing_schema
from tests.servers import LOOPBACK

PRODUCTION = {"mode": "production", "sender": "smtp", "password_hash_preset": "rfc9106_low_memory"}


def test_check_schema_says_the_database_was_never_migrated(tmp_path: Path) -> None:
    """An empty database: the message says so and names the command."""
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(SchemaOutdatedError) as raised:
            migrate.check_schema(db)
    finally:
        db.dispose()
    assert raised.value.message == (
        "The database has no Keystile tables (it was never migrated): run `keystile db upgrade`."
    )


def test_a_production_host_that_forgot_prepare_fails_at_start_up(
    make_settings: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No ``prepare()`` in the host's lifespan: Keystile's routes check, and start-up stops."""
    settings = make_settings(**PRODUCTION, database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    keystile = Keystile(settings)
    app = FastAPI()
    keystile.install(app)
    try:
        with (
            pytest.raises(SchemaOutdatedError, match="keystile db upgrade"),
            TestClient(app, client=LOOPBACK),
        ):
            pass
    finally:
        keystile.runtime.close()
    assert "run `keystile db upgrade`" in caplog.text


def test_a_host_that_forgot_prepare_in_development_is_migrated_at_start_up(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Development: the start-up does what ``prepare()`` does there, so the routes work."""
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    keystile = Keystile(settings)
    app = FastAPI()
    keystile.install(app)
    try:
        with TestClient(app, client=LOOPBACK) as client:
            response = client.post(
                "/auth/user/otp/request", json={"user": {"email": "a@example.com"}}
            )
    finally:
        keystile.runtime.close()
    assert response.status_code == 200


def test_calls_on_missing_tables_answer_503_and_log_the_fix(
    make_settings: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Tables gone while serving: 503 ``unavailable`` with no detail, one line naming the fix."""
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    keystile = Keystile(settings)
    app = FastAPI()
    keystile.install(app)
    try:
        # No lifespan: nothing prepared the database.
        client = TestClient(app, client=LOOPBACK)
        response = client.post(
            "/auth/user/password/sign_in",
            json={"user": {"email": "a@example.com", "password": "guess"}},
        )
    finally:
        keystile.runtime.close()
    assert response.status_code == 503
    assert response.json() == {
        "error": "unavailable",
        "message": "The service is temporarily unavailable.",
    }
    request_id = response.headers["x-request-id"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "run `keystile db upgrade`" in errors[0]
    assert errors[0].endswith(f"request_id={request_id}")


def test_a_missing_table_is_recognised_on_every_backend(db: Database) -> None:
    """SQLite's ``no such table`` (reported as unavailable) and PostgreSQL's 42P01 alike."""
    with pytest.raises(Exception) as raised, db.read() as conn:  # noqa: PT011 (backend decides)
        conn.execute(text("SELECT 1 FROM keystile_table_that_is_not_there"))
    assert is_missing_schema(raised.value)


def test_other_database_failures_are_not_mistaken_for_a_missing_schema(db: Database) -> None:
    """A syntax error is something else."""
    with pytest.raises(Exception) as raised, db.read() as conn:  # noqa: PT011 (backend decides)
        conn.execute(text("SELEC 1"))
    assert not is_missing_schema(raised.value)
