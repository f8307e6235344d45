"""The store itself: its aggregates, schema revision, health and lifetime."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from keel.domain.health import StoreHealth
from keel.metadata.base.artifacts import ArtifactRecords
from keel.metadata.base.audit import AuditLog
from keel.metadata.base.datasets import DatasetVersions
from keel.metadata.base.feedback import Feedback
from keel.metadata.base.identity import Identities
from keel.metadata.base.models import ModelRegistry
from keel.metadata.base.monitoring import Monitoring
from keel.metadata.base.predictions import Predictions
from keel.metadata.base.releases import Releases
from keel.metadata.base.runs import Runs
from keel.metadata.base.webhooks import Webhooks

__all__ = ["MetadataStore", "SchemaRevision"]


@dataclass(frozen=True, slots=True)
class SchemaRevision:
    """Where a database's schema is, next to where this keel wants it."""

    current: str | None  # None: an empty database
    head: str  # the newest revision this keel knows

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


class MetadataStore(ABC):
    """Project metadata: SQLAlchemy Core over SQLite or PostgreSQL."""

    url: str  # without password
    backend: str  # "sqlite" or "postgresql"
    artifacts: ArtifactRecords
    datasets: DatasetVersions
    runs: Runs
    models: ModelRegistry
    audit: AuditLog
    releases: Releases
    identities: Identities
    webhooks: Webhooks
    predictions: Predictions
    feedback: Feedback
    monitoring: Monitoring

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
