"""The metadata store port: one interface, split by aggregate, the same on every backend.

`keel.metadata.sql` implements it for SQLite (embedded default) and PostgreSQL. The schema
is created and upgraded only by Alembic migrations; later capabilities add aggregates
(datasets, runs, models, events) as attributes beside `artifacts`, each with a migration.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

from keel.domain.dataset import DatasetVersion
from keel.domain.digest import Digest
from keel.domain.health import StoreHealth

__all__ = [
    "ArtifactRecord",
    "ArtifactRecords",
    "DatasetVersions",
    "MetadataStore",
    "SchemaRevision",
]


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """An object the project knows about, and who stored it."""

    digest: Digest
    size: int
    media_type: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class SchemaRevision:
    """Where a database's schema is, next to where this keel wants it."""

    current: str | None  # None: an empty database
    head: str  # the newest revision this keel knows

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


class ArtifactRecords(ABC):
    """Objects recorded in metadata, and the references (holders) that keep them alive.

    A holder is a string naming what needs the object, e.g. `dataset:3f2a...` or
    `run:42/model`. Garbage collection keeps every object with at least one holder.
    """

    @abstractmethod
    def record(
        self,
        digest: Digest,
        *,
        size: int,
        media_type: str,
        actor: str,
        holder: str | None = None,
    ) -> ArtifactRecord:
        """Record an object (idempotent) and, if given, a holder, in one transaction."""

    @abstractmethod
    def get(self, digest: Digest) -> ArtifactRecord:
        """The record; `NotFound` if the object was never recorded."""

    @abstractmethod
    def find(self, digest: Digest) -> ArtifactRecord | None:
        """The record, or None if the object was never recorded."""

    @abstractmethod
    def list(self, *, limit: int | None = None) -> builtins.list[ArtifactRecord]:
        """Records in the order they were made, oldest first."""

    @abstractmethod
    def count(self) -> int:
        """How many objects are recorded."""

    @abstractmethod
    def add_holder(self, digest: Digest, holder: str) -> None:
        """Reference a recorded object (idempotent); `NotFound` if it was never recorded."""

    @abstractmethod
    def remove_holder(self, digest: Digest, holder: str) -> None:
        """Drop one reference (idempotent)."""

    @abstractmethod
    def holders(self, digest: Digest) -> builtins.list[str]:
        """The holders of an object, sorted; empty if it has none."""

    @abstractmethod
    def referenced(self) -> set[Digest]:
        """Every digest with at least one holder: the roots garbage collection keeps."""

    @abstractmethod
    def forget(self, digests: Iterable[Digest]) -> int:
        """Delete records that have no holder; returns how many went."""


class DatasetVersions(ABC):
    """Recorded dataset versions (`keel data snapshot`), each holding its stored objects.

    A version is recorded once: its id is a content digest, so adding the same content
    again (even from two processes at once) keeps the first record.
    """

    @abstractmethod
    def add(self, version: DatasetVersion) -> DatasetVersion:
        """Record the version and hold its Parquet and profile objects, in one transaction.

        Returns the recorded version: `version` itself, or the earlier record of the same
        id. Both objects must already be recorded as artifacts (`NotFound` otherwise), so
        a version never points at bytes gc may take; an object put for a version whose
        `add` never happened stays unheld, and gc reclaims it.
        """

    @abstractmethod
    def get(self, id: Digest) -> DatasetVersion:
        """The version; `NotFound` if it was never recorded."""

    @abstractmethod
    def find(self, id: Digest) -> DatasetVersion | None:
        """The version, or None if it was never recorded."""

    @abstractmethod
    def resolve(self, ref: str) -> DatasetVersion:
        """The version a user named: `latest`, a full id, or a unique prefix of >= 6 hex.

        `NotFound` if nothing matches, `Conflict` (listing the candidates) if a prefix
        names several versions, `ConfigError` if `ref` cannot name a version at all.
        """

    @abstractmethod
    def list(self, *, limit: int | None = None) -> builtins.list[DatasetVersion]:
        """Versions, newest first."""

    @abstractmethod
    def count(self) -> int:
        """How many versions are recorded."""


class MetadataStore(ABC):
    """Project metadata: SQLAlchemy Core over SQLite or PostgreSQL."""

    url: str  # without password
    backend: str  # "sqlite" or "postgresql"
    artifacts: ArtifactRecords
    datasets: DatasetVersions

    @abstractmethod
    def revision(self) -> SchemaRevision: ...

    @abstractmethod
    def upgrade(self) -> SchemaRevision:
        """Apply pending migrations (serialised across processes); returns the new revision."""

    @abstractmethod
    def health(self) -> StoreHealth: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
