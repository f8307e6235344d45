"""What a prediction log takes and promises: `PredictionBatch`, the rows of one answered
request, and `PredictionLog`, the interface the serving app and batch scoring write to."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from keel.domain.prediction import LoggedPrediction

__all__ = [
    "DeadLettered",
    "NullPredictionLog",
    "PredictionBatch",
    "PredictionLog",
    "Slot",
    "check_batch",
    "logged_predictions",
]

Slot = Literal["production", "canary", "shadow", "pinned", "batch"]


@dataclass(frozen=True, slots=True)
class PredictionBatch:
    """The rows of one answered request (or one shadow scoring of it): one id per row."""

    ids: Sequence[str]
    at: datetime  # when the request arrived (UTC)
    model: str
    version: int
    slot: Slot
    inputs: Mapping[str, Sequence[Any]]  # columns of JSON values, as validated
    outputs: Mapping[str, Sequence[Any]]  # columns of JSON values, as returned
    latency_ms: float
    client_id: str | None = None  # the id the client sent, if any
    shadow_of: Sequence[str] | None = None  # for shadow rows: the ids of the answered rows

    @property
    def rows(self) -> int:
        return len(self.ids)


class PredictionLog(ABC):
    """Where served predictions go."""

    @abstractmethod
    def submit(self, batch: PredictionBatch, timeout: float | None = None) -> None:
        """Enqueue a batch; returns at once unless the buffer is full (back-pressure).

        With `timeout`, waits at most that many seconds for room (`StoreError` then)."""

    @abstractmethod
    def flush(self, timeout: float | None = None) -> None:
        """Block until everything submitted before the call is durable."""

    @abstractmethod
    def close(self, timeout: float | None = None) -> None:
        """Flush and stop; later submits raise. With `timeout`, gives up flushing after
        that many seconds (`StoreError` saying what was not written)."""

    @property
    @abstractmethod
    def buffered(self) -> int:
        """Rows submitted and not yet durable."""

    @property
    def durable(self) -> bool:
        """Does `submit` return only once the rows are on local disk?"""
        return False

    @property
    def blocks(self) -> bool:
        """Would `submit` wait (for the disk, or for room) if called now?"""
        return False

    @property
    def refusing(self) -> str | None:
        """Why the log cannot take rows now, or None if it can (readiness reports it)."""
        return None

    @property
    def spooled(self) -> int:
        """Rows only the local spool holds, waiting for the store."""
        return 0

    @property
    def dead_lettered(self) -> int:
        """Rows the store refused, set aside in the dead-letter file."""
        return 0

    @property
    def store_down(self) -> bool:
        """Is the store failing to take rows (an outage in progress)?"""
        return False


class NullPredictionLog(PredictionLog):
    """Logging switched off (`serving.log.enabled: false`)."""

    def submit(self, batch: PredictionBatch, timeout: float | None = None) -> None:
        return None

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None

    @property
    def buffered(self) -> int:
        return 0


def check_batch(batch: PredictionBatch) -> None:
    """A malformed batch is a bug in the caller: refuse it now, not in the writer thread."""
    rows = len(batch.ids)
    for kind, columns in (("input", batch.inputs), ("output", batch.outputs)):
        for name, values in columns.items():
            if len(values) != rows:
                raise ValueError(
                    f"prediction batch: {kind} {name!r} has {len(values)} values for {rows} ids"
                )
    if batch.shadow_of is not None and len(batch.shadow_of) != rows:
        raise ValueError(
            f"prediction batch: shadow_of has {len(batch.shadow_of)} ids for {rows} rows"
        )
    if batch.at.tzinfo is None:
        raise ValueError(f"prediction batch: `at` must be timezone-aware, got {batch.at!r}")


def logged_predictions(batch: PredictionBatch) -> list[LoggedPrediction]:
    """One `LoggedPrediction` per row of a columnar batch."""
    shadow_of: Sequence[str | None] = batch.shadow_of or [None] * batch.rows
    return [
        LoggedPrediction(
            id=prediction_id,
            at=batch.at,
            model=batch.model,
            version=batch.version,
            slot=batch.slot,
            inputs=inputs,
            outputs=outputs,
            latency_ms=batch.latency_ms,
            client_id=batch.client_id,
            shadow_of=shadow,
        )
        for prediction_id, inputs, outputs, shadow in zip(
            batch.ids,
            _records(batch.inputs, batch.rows),
            _records(batch.outputs, batch.rows),
            shadow_of,
            strict=True,
        )
    ]


def _records(columns: Mapping[str, Sequence[Any]], rows: int) -> list[dict[str, Any]]:
    """Columns as one dict per row (the writer thread's main cost per row: kept lean)."""
    items = list(columns.items())
    return [{name: values[row] for name, values in items} for row in range(rows)]


@dataclass(frozen=True, slots=True)
class DeadLettered:
    """Rows the store refused, set aside (`on_dead_letter` receives one per refused row)."""

    rows: int
    path: Path | None  # the dead-letter file, or None if it could not be written
    error: str
    model: str
    version: int
