"""Schema migrations through Alembic, driven from code (no ``alembic.ini`` to ship)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from keystile.errors import SchemaOutdatedError
from keystile.store.database import Database

_SCRIPTS = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def head_revision() -> str:
    """The newest revision this version of Keystile knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    with db.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest)."""
    config = _config()
    with db.write() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def downgrade(db: Database, revision: str) -> None:
    """Undo migrations down to ``revision`` (``"base"``: an empty schema)."""
    config = _config()
    with db.write() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def check_schema(db: Database) -> None:
    """Refuse a database that is not at the newest revision, saying which case it is.

    Raises:
        SchemaOutdatedError: the database has no Keystile tables (never
            migrated) or an older revision; the message names ``keystile db upgrade``.
    """
    current, head = current_revision(db), head_revision()
    if current is None:
        raise SchemaOutdatedError(
            "The database has no Keystile tables (it was never migrated): "
            "run `keystile db upgrade`."
        )
    if current != head:
        raise SchemaOutdatedError(
            f"The database schema is at revision {current}, this Keystile needs {head}: "
            "run `keystile db upgrade`."
        )
