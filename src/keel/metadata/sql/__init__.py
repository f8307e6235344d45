"""The metadata store on SQLAlchemy Core + Alembic, for SQLite and PostgreSQL."""

from keel.metadata.sql.artifacts import SqlArtifactRecords
from keel.metadata.sql.engine import create_metadata_engine, exposed_sqlite_files, redact_url
from keel.metadata.sql.store import SqlMetadataStore, open_metadata_store

__all__ = [
    "SqlArtifactRecords",
    "SqlMetadataStore",
    "create_metadata_engine",
    "exposed_sqlite_files",
    "open_metadata_store",
    "redact_url",
]
