"""keel's schema migrations (Alembic), run from code under a cross-process lock.

Revisions live in `versions/`, one file per change, numbered `NNNN_<what>.py`; each
spells out its operations (never `metadata.create_all`). The Alembic configuration is
built here, so no alembic.ini ships or is needed at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "script_directory",
    "upgrade_to_head",
]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent

#: Key of the PostgreSQL advisory lock that serialises migrations across processes
#: (an arbitrary constant, the same in every keel: "keel" in ASCII).
POSTGRES_MIGRATION_LOCK: Final = 0x6B65656C


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic `Config` for these migrations, optionally bound to `connection`."""
    config = Config()
    # ConfigParser interpolates '%'; a path may contain one.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_directory() -> ScriptDirectory:
    """The revisions this keel knows; `get_current_head()` is the newest."""
    return ScriptDirectory.from_config(alembic_config())


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None for an empty database."""
    heads = MigrationContext.configure(connection).get_current_heads()
    # keel's history is linear; several heads would mean someone else's migrations.
    return heads[0] if heads else None


def upgrade_to_head(engine: Engine) -> None:
    """Apply every pending migration, one process at a time.

    The lock is taken before Alembic reads the current revision, so a process that
    waited finds the work done and applies nothing. PostgreSQL uses a transaction-level
    advisory lock; SQLite's write transactions start with `BEGIN IMMEDIATE` (see
    `engine.py`), which holds the database's write lock for the whole migration.
    Both backends have transactional DDL, so a failed migration leaves nothing behind.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_MIGRATION_LOCK}
            )
        command.upgrade(alembic_config(connection), "head")
