"""The profile of a table too big to hold in memory, built file by file from mergeable sketches.

    streamed = StreamedProfile()
    for table in files:          # one file at a time: memory is one file plus the sketches
        streamed.update(table)
    profile = streamed.profile()

The result is a `keel.stats.profile.Profile`, stored and shown like any other, with figures
of two kinds:

- exact: rows, each column's count and nulls, non-finite numbers, min and max (numbers and
  times), true and false counts, and the category counts while a column has at most
  `keel.stats.sketch.MAX_CATEGORIES` distinct values;
- from the sketch (`keel.stats.sketch`): the mean and standard deviation (Chan's merge, exact
  up to float rounding), quantiles and histogram counts (each value counted as its bucket's
  representative, within the number sketch's relative accuracy), and beyond
  `MAX_CATEGORIES` values the distinct count (then a lower bound) and the top values.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.stats.profile import (
    HISTOGRAM_BINS,
    QUANTILES,
    TOP_K,
    BooleanSummary,
    CategoricalSummary,
    ColumnProfile,
    Histogram,
    NumericSummary,
    Profile,
    TemporalSummary,
)
from keel.stats.sketch import ColumnSketch, TableSketch

__all__ = ["StreamedProfile"]


class StreamedProfile:
    """A profile built one table at a time; the tables must share their columns."""

    def __init__(self) -> None:
        self.rows = 0
        self._sketch = TableSketch()
        self._types: dict[str, Any] = {}
        self._nulls: dict[str, int] = {}
        self._times: dict[str, tuple[Any, Any]] = {}

    def update(self, table: pa.Table) -> None:
        self._sketch.update(table)
        self.rows += table.num_rows
        for field, values in zip(table.schema, table.columns, strict=True):
            self._types[field.name] = field.type  # the last file's, widened by the caller
            self._nulls[field.name] = self._nulls.get(field.name, 0) + values.null_count
            if pa.types.is_timestamp(field.type) or pa.types.is_date(field.type):
                self._time_bounds(field.name, values)

    def _time_bounds(self, name: str, values: pa.ChunkedArray) -> None:
        if values.null_count == len(values):
            return
        bounds = pc.min_max(values)
        low, high = _python(bounds["min"]), _python(bounds["max"])
        seen = self._times.get(name)
        if seen is not None:
            low, high = min(low, seen[0]), max(high, seen[1])
        self._times[name] = (low, high)

    def merge(self, other: StreamedProfile) -> None:
        """Add the tables `other` was built from, as if they had come after this one's."""
        self.rows += other.rows
        self._sketch = self._sketch.merge(other._sketch)
        for name, data_type in other._types.items():
            self._types.setdefault(name, data_type)
        for name, nulls in other._nulls.items():
            self._nulls[name] = self._nulls.get(name, 0) + nulls
        for name, (low, high) in other._times.items():
            seen = self._times.get(name)
            if seen is not None:
                low, high = min(low, seen[0]), max(high, seen[1])
            self._times[name] = (low, high)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document of the state (its types left out: `profile` takes a schema),
        for a part built elsewhere, as on a Spark executor."""
        return {
            "rows": self.rows,
            "sketch": self._sketch.to_dict(),
            "nulls": dict(self._nulls),
            "times": {
                name: [_time_kind(low), low.isoformat(), high.isoformat()]
                for name, (low, high) in self._times.items()
            },
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> StreamedProfile:
        """`to_dict`'s document read back; `ValueError` (or `KeyError`) when malformed."""
        streamed = cls()
        streamed.rows = int(document["rows"])
        streamed._sketch = TableSketch.from_dict(document["sketch"])
        streamed._nulls = {str(name): int(nulls) for name, nulls in document["nulls"].items()}
        for name, (kind, low, high) in document["times"].items():
            parse = date.fromisoformat if kind == "date" else datetime.fromisoformat
            streamed._times[str(name)] = (parse(low), parse(high))
        return streamed

    def profile(self, schema: pa.Schema | None = None) -> Profile:
        """The profile; with `schema`, of its columns in its types (the files' combined
        schema, where the parts were built apart), else of the columns seen last."""
        types = self._types
        if schema is not None:
            types = dict(zip(schema.names, schema.types, strict=True))
        return Profile(
            rows=self.rows,
            columns=tuple(self._column(name, kind) for name, kind in types.items()),
        )

    def _column(self, name: str, data_type: Any) -> ColumnProfile:
        nulls = self._nulls[name]
        count = self.rows - nulls
        column = ColumnProfile(
            name=name, type=str(data_type), kind="other", count=count, nulls=nulls
        )
        sketch = self._sketch.columns.get(name)
        if sketch is None:
            return column
        if sketch.kind == "numeric":
            return replace(column, kind="numeric", numeric=_numeric(sketch, data_type, count))
        if sketch.kind == "categorical":
            return replace(column, kind="string", categorical=_categorical(sketch, count))
        if sketch.kind == "boolean":
            true = sketch.categories.get("true", 0)
            return replace(column, kind="boolean", boolean=BooleanSummary(true, count - true))
        times = self._times.get(name)
        temporal = None if times is None else TemporalSummary(_iso(times[0]), _iso(times[1]))
        return replace(column, kind="temporal", temporal=temporal)


def _numeric(sketch: ColumnSketch, data_type: Any, count: int) -> NumericSummary | None:
    numbers = sketch.numeric
    if numbers is None or sketch.values == 0 or sketch.min is None or sketch.max is None:
        return None
    low, high = float(sketch.min), float(sketch.max)
    quantiles = numbers.quantiles(list(QUANTILES.values()))
    return NumericSummary(
        count=sketch.values,
        non_finite=count - sketch.values,
        min=low,
        max=high,
        mean=float(sketch.mean),
        std=float(sketch.std),
        quantiles=dict(zip(QUANTILES, (float(q) for q in quantiles), strict=True)),
        histogram=_histogram(sketch, data_type, low, high),
    )


def _histogram(sketch: ColumnSketch, data_type: Any, low: float, high: float) -> Histogram:
    assert sketch.numeric is not None
    total = sketch.values
    if pa.types.is_integer(data_type) and high - low + 1 <= HISTOGRAM_BINS:
        # One bin per integer, as the exact profile has: the share of values up to k + 0.5.
        edges = tuple(float(v) for v in range(int(low), int(high) + 2))
        cuts = np.array([v + 0.5 for v in range(int(low), int(high) + 1)])
    else:
        span = high - low
        if not span / HISTOGRAM_BINS > 0 or not math.isfinite(span):
            return Histogram(edges=(low, high), counts=(total,))
        width = span / HISTOGRAM_BINS
        edges = (*(low + i * width for i in range(HISTOGRAM_BINS)), high)
        # Values up to each inner edge, then everything up to the maximum.
        cuts = np.array([*(np.nextafter(e, -math.inf) for e in edges[1:-1]), math.inf])
    below = np.rint(sketch.numeric.cdf(cuts) * total).astype(np.int64)
    below[-1] = total
    counts = np.diff(np.concatenate(([0], below)))
    return Histogram(edges=edges, counts=tuple(int(c) for c in counts))


def _categorical(sketch: ColumnSketch, count: int) -> CategoricalSummary:
    if count == 0:
        return CategoricalSummary(distinct=0, top=())
    ranked = sorted(sketch.categories.items(), key=lambda pair: (-pair[1], pair[0]))
    return CategoricalSummary(distinct=len(sketch.categories), top=tuple(ranked[:TOP_K]))


def _python(scalar: Any) -> Any:
    if pa.types.is_timestamp(scalar.type) and scalar.type.unit == "ns":
        # Python datetimes stop at microseconds, as the exact profile cuts them.
        scalar = scalar.cast(pa.timestamp("us", scalar.type.tz), safe=False)
    return scalar.as_py()


def _time_kind(value: Any) -> str:
    # A datetime is a date too: the finer type first.
    return "datetime" if isinstance(value, datetime) else "date"


def _iso(value: Any) -> str:
    text: str = value.isoformat()
    return text
