"""Content-addressed artifact storage: a local folder or S3, chosen by URL.

`open_artifact_store("/data/keel/artifacts")` (or `"s3://bucket/prefix"`) gives an
`ArtifactStore`; `put_file` returns the digest that names the bytes, and `get_file` writes
them back only after checking them against it.
"""

from keel.artifacts.base import ArtifactStore, GcReport, ObjectInfo, ProgressCallback, PutResult
from keel.artifacts.local import LocalArtifactStore
from keel.artifacts.registry import KNOWN_SCHEMES, open_artifact_store
from keel.artifacts.s3 import S3ArtifactStore

__all__ = [
    "KNOWN_SCHEMES",
    "ArtifactStore",
    "GcReport",
    "LocalArtifactStore",
    "ObjectInfo",
    "ProgressCallback",
    "PutResult",
    "S3ArtifactStore",
    "open_artifact_store",
]
