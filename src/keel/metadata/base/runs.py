"""Training runs: params, metrics, steps, cached steps and artifacts."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from keel.domain.run import (
    CachedStep,
    Metric,
    MetricSummary,
    Run,
    RunArtifact,
    RunStatus,
    StepRecord,
)

__all__ = ["Runs"]


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
        output against gc, unless `record.cache` is false."""

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
