"""The prediction log: logged rows, segments and their statistics."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from keel.domain.prediction import LoggedPrediction, PredictionLogStats, PredictionSegment

__all__ = ["Predictions"]


class Predictions(ABC):
    """The prediction log: recent rows, and the index of compacted Parquet segments.

    Rows are immutable. The log's writer adds them in batches, one transaction each
    (durable at commit); an id already logged is skipped, so a retried batch never
    duplicates. Compaction stores a segment object first, then `add_segment` indexes it
    and deletes exactly the rows it holds in one transaction: a crash in between leaves
    the rows in place and an unheld object for gc, never a loss or a duplicate.
    """

    @abstractmethod
    def add(self, rows: Sequence[LoggedPrediction]) -> None:
        """Write rows in one transaction."""

    @contextmanager
    def compaction_lease(self) -> Iterator[bool]:
        """Whether this process may compact now, held for the block: servers that share a
        store compact one at a time (compaction is safe concurrently, but wasted twice)."""
        yield True

    @abstractmethod
    def get(self, prediction_id: str) -> LoggedPrediction | None:
        """A row still in the metadata store, or None (it may be in a segment)."""

    @abstractmethod
    def window(
        self,
        model: str,
        start: datetime,
        end: datetime,
        *,
        version: int | None = None,
        slot: str | None = None,
    ) -> builtins.list[LoggedPrediction]:
        """Rows still in the metadata store with `start <= at < end`, by time then id."""

    @abstractmethod
    def closed(self, before: datetime) -> builtins.list[tuple[str, int, int]]:
        """(model, version, rows) for every model version with rows older than `before`."""

    @abstractmethod
    def oldest(
        self, model: str, version: int, before: datetime, *, limit: int
    ) -> builtins.list[LoggedPrediction]:
        """Up to `limit` rows of a model version older than `before`, by id."""

    @abstractmethod
    def add_segment(self, segment: PredictionSegment, *, before: datetime, actor: str) -> None:
        """Index a stored segment, hold its object, and delete the rows it holds (those of
        its model version older than `before` within its id range), in one transaction.

        `NotFound` if the object is not recorded; `Conflict` (and nothing changes) if the
        rows to delete are not exactly the segment's count: rows arrived or went meanwhile.
        """

    @abstractmethod
    def segments(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> builtins.list[PredictionSegment]:
        """Segments with rows in `[start, end)`, oldest first."""

    @abstractmethod
    def segments_holding(self, prediction_id: str) -> builtins.list[PredictionSegment]:
        """Segments whose id range covers `prediction_id` (at most one holds it)."""

    @abstractmethod
    def stats(self) -> builtins.list[PredictionLogStats]:
        """Rows and segments per model version, by model then version."""
