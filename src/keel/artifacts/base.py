"""The artifact store port: content-addressed, streaming, atomic, verified on read.

Every object is named by the BLAKE3 digest of its bytes. Backends guarantee:
- put streams in bounded memory and is atomic: a reader sees the whole object or none;
- every read verifies the bytes against the digest before handing any of them out,
  raising `keel.errors.IntegrityError` for a corrupted object;
- gc deletes only objects that nobody references and that are older than a grace period,
  so a concurrent put of the same bytes is never undone.

Beside the objects, a store keeps a few write-once documents under fixed names (the audit
log's signed checkpoints): created whole or not at all, never replaced by keel, and
outside gc's reach.
"""

from __future__ import annotations

import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from keel.domain.digest import Digest
from keel.domain.health import StoreHealth
from keel.errors import ConfigError, KeelError

__all__ = [
    "ArtifactStore",
    "GcReport",
    "ObjectInfo",
    "ProgressCallback",
    "PutResult",
    "check_document_name",
]

#: Called with the number of bytes just processed; for progress bars.
ProgressCallback = Callable[[int], None]


#: A document's name: lowercase path segments, never `..`, never inside the objects' folders.
_DOCUMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)+$")
_RESERVED_FOLDERS = frozenset({"objects", "tmp"})


def check_document_name(name: str) -> str:
    """`name` if it may name a document (`folder/file`, lowercase), else `ConfigError`."""
    if (
        _DOCUMENT_NAME.fullmatch(name) is None
        or ".." in name
        or name.split("/", 1)[0] in _RESERVED_FOLDERS
    ):
        raise ConfigError(
            f"{name!r} cannot name a document of the artifact store",
            problems=[
                ("name", "lowercase 'folder/file' segments, no '..', not under objects/ or tmp/")
            ],
        )
    return name


@dataclass(frozen=True, slots=True)
class PutResult:
    digest: Digest
    size: int
    existed: bool  # the store already held these bytes; nothing was written


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    digest: Digest
    size: int
    modified: datetime


@dataclass(frozen=True, slots=True)
class GcReport:
    deleted: list[Digest] = field(default_factory=list)
    freed_bytes: int = 0
    kept: int = 0
    temp_files_removed: int = 0


class ArtifactStore(ABC):
    """A content-addressed object store. Backends: `local` (a folder) and `s3` (fsspec)."""

    #: Where the store lives, without credentials.
    url: str
    backend: str

    @abstractmethod
    def put_file(self, path: Path, *, progress: ProgressCallback | None = None) -> PutResult:
        """Store the file's bytes, reading it once in bounded memory."""

    @abstractmethod
    def put_stream(
        self, stream: BinaryIO, *, progress: ProgressCallback | None = None
    ) -> PutResult:
        """Store everything the stream yields until EOF, in bounded memory."""

    def put_bytes(self, data: bytes) -> PutResult:
        import io

        return self.put_stream(io.BytesIO(data))

    @abstractmethod
    def get_file(
        self, digest: Digest, dest: Path, *, progress: ProgressCallback | None = None
    ) -> None:
        """Write the object to `dest` atomically, verified; `dest` is untouched on failure."""

    @abstractmethod
    def read_bytes(self, digest: Digest) -> bytes:
        """The whole object, verified. For small objects (documents, profiles)."""

    @abstractmethod
    def verify(self, digest: Digest) -> None:
        """Re-hash the stored object: `IntegrityError` if corrupt, `NotFound` if absent."""

    @abstractmethod
    def exists(self, digest: Digest) -> bool: ...

    @abstractmethod
    def info(self, digest: Digest) -> ObjectInfo:
        """Size and time of an object; `NotFound` if absent."""

    @abstractmethod
    def iter_objects(self) -> Iterator[ObjectInfo]: ...

    @abstractmethod
    def delete(self, digest: Digest) -> None:
        """Remove the object; `NotFound` if absent."""

    @abstractmethod
    def gc(self, keep: Set[Digest], *, grace: timedelta = timedelta(hours=1)) -> GcReport:
        """Delete objects not in `keep` and older than `grace`, and stale temp files."""

    @abstractmethod
    def create_document(self, name: str, data: bytes) -> None:
        """Store `data` under `name` if nothing is there yet (`Conflict` otherwise), whole or
        not at all, and protect it from being replaced as far as the backend allows."""

    @abstractmethod
    def read_document(self, name: str) -> bytes:
        """The document's bytes; `NotFound` if absent."""

    @abstractmethod
    def list_documents(self, folder: str) -> list[str]:
        """The names of the documents in `folder` (not below it), sorted."""

    def health(self) -> StoreHealth:
        """Write, read back and delete a small probe object; report how long it took.

        Never raises for an unreachable or broken store: that is `ok=False` with the reason.
        """
        started = time.perf_counter()
        try:
            probe = f"keel health probe {uuid.uuid4()}".encode()
            stored = self.put_bytes(probe)
            ok = self.read_bytes(stored.digest) == probe
            self.delete(stored.digest)
            detail = "wrote, read back and deleted a probe object"
        except (OSError, KeelError) as exc:
            ok, detail = False, f"probe failed: {exc}"
        return StoreHealth(
            kind="artifacts",
            backend=self.backend,
            url=self.url,
            ok=ok,
            detail=detail,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
