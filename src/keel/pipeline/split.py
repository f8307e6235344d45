"""Holdout splits: the newest rows by time (the default), or seeded random rows.

A time split cuts on a timestamp boundary, never through rows that share one instant, so the
holdout holds only rows strictly later than every training row: what a model meets in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.domain.times import NotATime, to_utc
from keel.errors import ConfigError

__all__ = ["Split", "split_rows"]


@dataclass(frozen=True, slots=True)
class Split:
    """Row positions of the training part and the holdout, both in ascending order."""

    train: np.ndarray[Any, np.dtype[np.int64]]
    holdout: np.ndarray[Any, np.dtype[np.int64]]
    method: Literal["time", "random"]
    #: For a time split: the first instant in the holdout (every training row is earlier).
    boundary: datetime | None = None
    #: Rows older than the training window, in neither part.
    excluded: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "train_rows": int(self.train.size),
            "holdout_rows": int(self.holdout.size),
            "boundary": self.boundary.isoformat() if self.boundary else None,
            "excluded_rows": self.excluded or None,
        }


def split_rows(
    table: pa.Table,
    *,
    method: Literal["time", "random"],
    holdout: float,
    timestamp: str | None = None,
    seed: int = 0,
    window: timedelta | None = None,
) -> Split:
    """Split `table` into training rows and a holdout of about `holdout` of the rows; with
    `window`, only the rows within that span of the newest timestamp take part (the others
    are in neither part: `retraining.training_window`).

    Raises ConfigError naming the setting when the split cannot be made: no timestamp column
    for a time split, a column that is not a timestamp, nulls in it, or too few rows or
    instants to leave both parts non-empty.
    """
    if not 0 < holdout < 1:
        raise ConfigError(
            f"training.split.holdout: expected a fraction between 0 and 1, got {holdout}"
        )
    if window is not None:
        return _windowed(table, method, holdout, timestamp, seed, window)
    rows = table.num_rows
    if rows < 2:
        raise ConfigError(f"cannot split {rows} row(s) into training and holdout parts")
    if method == "random":
        return _random(rows, holdout, seed)
    if timestamp is None:
        raise ConfigError(
            "training.split.method is 'time' but data.timestamp is not set",
            hint="set data.timestamp in keel.yaml, or use split.method: random",
        )
    return _by_time(table, timestamp, holdout)


def _random(rows: int, holdout: float, seed: int) -> Split:
    generator = np.random.default_rng(seed)
    order = generator.permutation(rows)
    size = min(rows - 1, max(1, round(rows * holdout)))
    return Split(
        train=np.sort(order[size:]).astype(np.int64),
        holdout=np.sort(order[:size]).astype(np.int64),
        method="random",
    )


def _by_time(table: pa.Table, column: str, holdout: float) -> Split:
    if column not in table.column_names:
        raise ConfigError(
            f"data.timestamp: column '{column}' is not in the data",
            hint=f"columns are: {', '.join(table.column_names)}",
        )
    values = _instants(table, column)
    nulls = values.null_count
    if nulls:
        raise ConfigError(
            f"data.timestamp: column '{column}' has {nulls:,} null(s); a time split needs "
            "every row to have a time"
        )
    ticks = values.cast(pa.int64()).to_numpy(zero_copy_only=False)
    order = np.argsort(ticks, kind="stable")
    wanted = min(len(ticks) - 1, max(1, round(len(ticks) * holdout)))
    # The first holdout row is the first row of the instant that contains the cut,
    # moved later when that would leave no training rows.
    sorted_ticks = ticks[order]
    cut_tick = sorted_ticks[len(ticks) - wanted]
    start = int(np.searchsorted(sorted_ticks, cut_tick, side="left"))
    if start == 0:
        start = int(np.searchsorted(sorted_ticks, cut_tick, side="right"))
    if start >= len(ticks):
        raise ConfigError(
            f"data.timestamp: column '{column}' has a single instant; a time split needs "
            "at least two (or use split.method: random)"
        )
    boundary = values.take(pa.array([int(order[start])]))[0].as_py()
    return Split(
        train=np.sort(order[:start]).astype(np.int64),
        holdout=np.sort(order[start:]).astype(np.int64),
        method="time",
        boundary=boundary,
    )


def _instants(table: pa.Table, column: str) -> pa.ChunkedArray:
    """The time column as UTC microseconds, whatever temporal type (or ISO text) it holds."""
    try:
        return to_utc(table[column])
    except NotATime as exc:
        raise ConfigError(
            f"data.timestamp: column '{column}' {exc}",
            hint="name a date or timestamp column (ISO 8601 text is parsed)",
        ) from None


def _windowed(
    table: pa.Table,
    method: Literal["time", "random"],
    holdout: float,
    timestamp: str | None,
    seed: int,
    window: timedelta,
) -> Split:
    if timestamp is None or timestamp not in table.column_names:
        raise ConfigError(
            "retraining.training_window needs data.timestamp, the column rows are dated by",
            problems=[("retraining.training_window", "needs data.timestamp")],
        )
    values = _instants(table, timestamp)
    newest = pc.max(values).as_py()
    if newest is None:
        raise ConfigError(f"data.timestamp: column '{timestamp}' holds no times")
    keep = pc.fill_null(pc.greater_equal(values, pa.scalar(newest - window, values.type)), False)
    positions = np.flatnonzero(keep.to_numpy(zero_copy_only=False)).astype(np.int64)
    inner = split_rows(
        table.take(pa.array(positions)),
        method=method,
        holdout=holdout,
        timestamp=timestamp,
        seed=seed,
    )
    return Split(
        train=positions[inner.train],
        holdout=positions[inner.holdout],
        method=inner.method,
        boundary=inner.boundary,
        excluded=table.num_rows - positions.size,
    )
