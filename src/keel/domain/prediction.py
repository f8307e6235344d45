"""Logged predictions: one row of the prediction log, and a compacted segment of it.

A `LoggedPrediction` is what the log keeps of one answered row: its id (time-ordered, see
`keel.predlog.ids`), when the request arrived, which model version answered in which slot,
the inputs as validated and the outputs as returned (JSON values). Recent rows live in the
metadata store; closed time ranges are compacted into `PredictionSegment`s, Parquet objects
in the artifact store indexed by their time and id ranges. Pure: no storage, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keel.domain.digest import Digest

__all__ = ["LoggedPrediction", "PredictionLogStats", "PredictionSegment"]


@dataclass(frozen=True, slots=True)
class LoggedPrediction:
    """One logged row. `inputs` and `outputs` map names to JSON values."""

    id: str
    at: datetime  # when the request arrived (UTC)
    model: str
    version: int
    slot: str  # production, canary, shadow, pinned or batch
    inputs: Mapping[str, Any] = field(hash=False)
    outputs: Mapping[str, Any] = field(hash=False)
    latency_ms: float
    client_id: str | None = None
    shadow_of: str | None = None  # for a shadow row: the id of the answered row

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document (time ISO-8601 in UTC)."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "model": self.model,
            "version": self.version,
            "ref": self.ref,
            "slot": self.slot,
            "client_id": self.client_id,
            "shadow_of": self.shadow_of,
            "latency_ms": self.latency_ms,
            "inputs": dict(self.inputs),
            "outputs": dict(self.outputs),
        }


@dataclass(frozen=True, slots=True)
class PredictionSegment:
    """A Parquet object holding one model version's rows of a closed time range, sorted by id.

    `first_at`/`last_at` and `min_id`/`max_id` are inclusive bounds of the rows it holds:
    what a window read and a lookup by id consult before opening the object.
    """

    digest: Digest
    model: str
    version: int
    first_at: datetime
    last_at: datetime
    min_id: str
    max_id: str
    rows: int
    size: int
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": str(self.digest),
            "model": self.model,
            "version": self.version,
            "first_at": self.first_at.isoformat(),
            "last_at": self.last_at.isoformat(),
            "min_id": self.min_id,
            "max_id": self.max_id,
            "rows": self.rows,
            "size": self.size,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class PredictionLogStats:
    """What the log holds for one model version: recent rows, and compacted segments."""

    model: str
    version: int
    rows: int  # still in the metadata store
    segments: int
    segment_rows: int
    segment_bytes: int
    first_at: datetime | None
    last_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "rows": self.rows,
            "segments": self.segments,
            "segment_rows": self.segment_rows,
            "segment_bytes": self.segment_bytes,
            "total_rows": self.rows + self.segment_rows,
            "first_at": None if self.first_at is None else self.first_at.isoformat(),
            "last_at": None if self.last_at is None else self.last_at.isoformat(),
        }
