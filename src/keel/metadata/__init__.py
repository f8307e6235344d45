"""Project metadata storage: the store port and its SQL implementation.

from keel.metadata import open_metadata_store

with open_metadata_store("sqlite:///.keel/metadata.db") as store:
    store.artifacts.record(digest, size=12, media_type="text/plain", actor="ada")
"""

from keel.metadata.base import ArtifactRecord, ArtifactRecords, MetadataStore, SchemaRevision
from keel.metadata.sql import SqlMetadataStore, open_metadata_store, redact_url

__all__ = [
    "ArtifactRecord",
    "ArtifactRecords",
    "MetadataStore",
    "SchemaRevision",
    "SqlMetadataStore",
    "open_metadata_store",
    "redact_url",
]
