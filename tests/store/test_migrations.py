"""Migrations create the schema the code expects, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from keystile.errors import SchemaOutdatedError
from keystile.store import migrate
from keystile.store.database import Database
from keystile.store.tables import metadata


def test_empty_database_is_reported_outdated_then_upgraded(tmp_path: Path) -> None:
    """An empty database fails the production check until ``db upgrade`` runs."""
    db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert migrate.current_revision(db) is None
        with pytest.raises(SchemaOutdatedError):
            migrate.check_schema(db)
        migrate.upgrade(db)
        migrate.check_schema(db)
        assert migrate.current_revision(db) == migrate.head_revision()
        migrate.upgrade(db)  # a second upgrade is a no-op
    finally:
        db.dispose()


def test_migrated_schema_matches_the_table_definitions(db: Database) -> None:
    """Every table and column the code uses exists after migration."""
    inspector = inspect(db.engine)
    for table in metadata.sorted_tables:
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        assert columns == {column.name for column in table.columns}, table.name


def test_migrated_schema_is_exactly_the_table_definitions(db: Database) -> None:
    """Alembic finds no difference at all: tables, columns, types, nullability,
    server defaults, indexes, unique and foreign keys (with their ON DELETE)."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, metadata) == []


def test_downgrade_and_upgrade_round_trip(tmp_path: Path) -> None:
    """Migrations can be undone and redone."""
    db = Database(f"sqlite:///{tmp_path / 'round.db'}")
    try:
        migrate.upgrade(db)
        migrate.downgrade(db, "base")
        assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision()
    finally:
        db.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql://x@y/z"])
def test_unusable_urls_are_refused_with_a_reason(url: str) -> None:
    """In-memory SQLite (one database per connection) and unknown backends are refused."""
    with pytest.raises(ValueError, match=r"in-memory SQLite|unsupported database"):
        Database(url)
