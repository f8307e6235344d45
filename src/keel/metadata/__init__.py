"""Project metadata storage: the store port and its SQL implementation.

from keel.metadata import open_metadata_store

with open_metadata_store("sqlite:///.keel/metadata.db") as store:
    store.artifacts.record(digest, size=12, media_type="text/plain", actor="ada")
"""

from typing import TYPE_CHECKING, Any

from keel.metadata.base import ArtifactRecord, ArtifactRecords, MetadataStore, SchemaRevision

if TYPE_CHECKING:
    from keel.metadata.sql import (
        SqlMetadataStore,
        exposed_sqlite_files,
        open_metadata_store,
        redact_url,
    )

__all__ = [
    "ArtifactRecord",
    "ArtifactRecords",
    "MetadataStore",
    "SchemaRevision",
    "SqlMetadataStore",
    "exposed_sqlite_files",
    "open_metadata_store",
    "redact_url",
]


def __getattr__(name: str) -> Any:
    # The SQL adapter (SQLAlchemy, Alembic) loads on first use, not with the port.
    if name in {"SqlMetadataStore", "exposed_sqlite_files", "open_metadata_store", "redact_url"}:
        from keel.metadata import sql

        return getattr(sql, name)
    raise AttributeError(f"module 'keel.metadata' has no attribute {name!r}")
