"""Alembic environment for keel's metadata schema.

keel runs migrations itself (`keel.metadata.sql.migrations.upgrade_to_head`), handing
over a connection that already holds the cross-process migration lock; no alembic.ini
is needed. For writing a new revision with the alembic CLI, an ini file that sets
`script_location` to this folder and `sqlalchemy.url` works too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from keel.metadata.sql.engine import create_metadata_engine
from keel.metadata.sql.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "keel's migrations need a connection in config.attributes['connection'] "
            "or sqlalchemy.url in the alembic config"
        )
    engine = create_metadata_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("keel's migrations run online only; offline SQL scripts are not supported")
_run_online()
