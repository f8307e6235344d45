"""The metadata store port: one interface, split by aggregate, the same on every backend.

`keel.metadata.sql` implements it for SQLite (embedded default) and PostgreSQL. The schema
is created and upgraded only by Alembic migrations; later capabilities add aggregates
(datasets, runs, models, events) as attributes beside `artifacts`, each with a migration.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from keel.domain.dataset import DatasetVersion
from keel.domain.digest import Digest
from keel.domain.health import StoreHealth
from keel.domain.model import CANDIDATE, Alias, ModelRef, ModelVersion, RegisteredModel
from keel.domain.run import (
    CachedStep,
    Metric,
    MetricSummary,
    Run,
    RunArtifact,
    RunStatus,
    StepRecord,
)

__all__ = [
    "ArtifactRecord",
    "ArtifactRecords",
    "DatasetVersions",
    "MetadataStore",
    "ModelRegistry",
    "Runs",
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


class Runs(ABC):
    """Training runs, what they logged, their steps, and the step cache.

    A run is written by one process (the one that started it) while it is `running`;
    once finished, `completed` or `failed`, it is read-only: logging to it is a
    `Conflict`. Params are immutable: the same key with another value is a `Conflict`
    naming both values. An unknown run id is `NotFound` everywhere.
    """

    @abstractmethod
    def start(
        self,
        run: Run,
        *,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        """Record a new `running` run with its first params and tags, in one transaction."""

    @abstractmethod
    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, str] | None = None,
        metrics: Sequence[Metric] = (),
        tags: Mapping[str, str] | None = None,
        heartbeat: datetime | None = None,
    ) -> None:
        """Record params, metric points and tags in one transaction (and the heartbeat)."""

    @abstractmethod
    def finish(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: str | None = None,
        ended_at: datetime | None = None,
        params: Mapping[str, str] | None = None,
        metrics: Sequence[Metric] = (),
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        """End a running run, writing its last logs in the same transaction."""

    @abstractmethod
    def heartbeat(self, run_id: str, at: datetime | None = None) -> None:
        """Note that the run's process is alive; `Conflict` if the run has finished."""

    @abstractmethod
    def get(self, run_id: str) -> Run:
        """The run; `NotFound` if there is none with that id."""

    @abstractmethod
    def resolve(self, ref: str) -> Run:
        """The run a user named: a full id or a unique prefix of at least 6 hex characters.

        `NotFound` if nothing matches, `Conflict` (listing candidates) if several do.
        """

    @abstractmethod
    def list(
        self, *, limit: int | None = None, status: RunStatus | None = None
    ) -> builtins.list[Run]:
        """Runs, newest first, optionally only those with `status`."""

    @abstractmethod
    def metrics(self, run_id: str, key: str | None = None) -> builtins.list[Metric]:
        """Metric points by key, then step, then time; only `key`'s series if given."""

    @abstractmethod
    def metric_summaries(self, run_id: str) -> builtins.list[MetricSummary]:
        """Each metric's last value and series length, by key."""

    @abstractmethod
    def params(self, run_id: str) -> dict[str, str]:
        """The run's params, by key."""

    @abstractmethod
    def tags(self, run_id: str) -> dict[str, str]:
        """The run's tags, by key."""

    @abstractmethod
    def add_artifact(self, run_id: str, artifact: RunArtifact) -> None:
        """Name a recorded object as the run's artifact and hold it against gc.

        `NotFound` if the object is not recorded; the same name for another object is a
        `Conflict`; the same name and object again changes nothing.
        """

    @abstractmethod
    def artifacts(self, run_id: str) -> builtins.list[RunArtifact]:
        """The run's artifacts, by name."""

    @abstractmethod
    def record_step(self, record: StepRecord) -> None:
        """Record what a step did in a run. A step that ran with an output also becomes
        the step cache's entry for its cache key (replacing an older one), holding the
        output against gc."""

    @abstractmethod
    def steps(self, run_id: str) -> builtins.list[StepRecord]:
        """The run's steps, in the order they were recorded."""

    @abstractmethod
    def find_cached_step(self, cache_key: str) -> CachedStep | None:
        """The cached output for a step cache key, or None."""

    @abstractmethod
    def reap_dead(
        self,
        now: datetime,
        host: str,
        is_alive: Callable[[int], bool],
        *,
        timeout: timedelta = timedelta(minutes=10),
    ) -> builtins.list[Run]:
        """Mark as failed the running runs whose process is gone; returns them.

        Gone means: on `host` (this machine) with a pid that `is_alive` says is not
        running, or anywhere with no heartbeat for longer than `timeout`.
        """

    @abstractmethod
    def count(self) -> int:
        """How many runs are recorded."""


class ModelRegistry(ABC):
    """Registered models: numbered versions of run outputs, and aliases on them.

    Versions of a model are numbered 1, 2, ... in registration order, without gaps, even
    when several processes register at once. A version is immutable; it holds its package
    object against gc (holder `model:<name>/<version>`). Aliases are movable names on
    versions; registration may set one (`candidate` by default) in the same transaction.
    Moving other aliases is the release workflow's job (gates, approvals, audit log), not
    this port's. Unknown models, versions and aliases are `NotFound`, naming what exists.
    """

    @abstractmethod
    def register(
        self,
        model: str,
        *,
        run_id: str,
        package: Digest,
        flavor: str,
        inference_contract: Mapping[str, object],
        metrics: Mapping[str, float],
        actor: str,
        alias: str | None = CANDIDATE,
    ) -> ModelVersion:
        """Record the next version of `model` (creating the model on first use).

        In one transaction: allocate the version number, hold `package`, and point `alias`
        (unless None) at the new version. `ConfigError` for an invalid name, alias, metric
        or contract; `NotFound` if the run or the package object is not recorded;
        `Conflict` if the run failed.
        """

    @abstractmethod
    def get(self, model: str, version: int) -> ModelVersion:
        """One version; `NotFound` if the model or the version does not exist."""

    @abstractmethod
    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference names: `name@3`, `name@alias`, `name@latest` or `name`
        (its newest version). `ConfigError` for a malformed reference, `NotFound` (naming
        the versions or aliases that do exist) for one that names nothing."""

    @abstractmethod
    def list_models(self) -> builtins.list[RegisteredModel]:
        """Every model with its newest version and aliases, by name."""

    @abstractmethod
    def versions(self, model: str) -> builtins.list[ModelVersion]:
        """The model's versions, newest first; `NotFound` for an unknown model."""

    @abstractmethod
    def aliases(self, model: str) -> builtins.list[Alias]:
        """The model's aliases, by name; `NotFound` for an unknown model."""


class MetadataStore(ABC):
    """Project metadata: SQLAlchemy Core over SQLite or PostgreSQL."""

    url: str  # without password
    backend: str  # "sqlite" or "postgresql"
    artifacts: ArtifactRecords
    datasets: DatasetVersions
    runs: Runs
    models: ModelRegistry

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
