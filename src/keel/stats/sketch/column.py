"""A column's sketch of any kind: numbers, categories, booleans or times, and its nulls."""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.stats.sketch.arrow import (
    _KINDS,
    ColumnKind,
    column_kind,
    count_integers,
    finite_numbers,
    value_counts,
)
from keel.stats.sketch.documents import _integer, _moment, _optional_float
from keel.stats.sketch.numeric import NumericSketch, _extreme

__all__ = ["MAX_CATEGORIES", "TAIL_BUCKETS", "ColumnSketch", "tail_bucket"]


MAX_CATEGORIES: Final = 1000
#: Buckets the values beyond MAX_CATEGORIES are counted in, by a hash of the value.
TAIL_BUCKETS: Final = 4096


@dataclass(eq=True)
class ColumnSketch:
    """One column's summary. `count` is rows seen, nulls included; `values` the rest.

    `mean` and `m2` (sum of squared deviations from the mean) describe the non-missing values
    of a numeric column; `min` and `max` those of numeric and temporal columns (temporal as
    epoch seconds). `categories`, `other` and `tail` are for categorical and boolean columns:
    the MAX_CATEGORIES most frequent values counted one by one, the count of the rest in
    `other`, and `other` split by `tail_bucket` into TAIL_BUCKETS counts (`tail`: bucket ->
    count, the non-zero ones; None where the split is unknown, for sketches of version 1 and
    merges with them).

    For every tail bucket, its count plus the counts of the listed values that hash to it is
    exactly how many values hash to it, whatever was folded when: merges add both sides, and
    folding moves a value's count into its own bucket. The drift tests rely on it.
    """

    name: str
    kind: ColumnKind
    arrow_type: str
    count: int = 0
    nulls: int = 0
    min: float | None = None
    max: float | None = None
    mean: float = 0.0
    m2: float = 0.0
    numeric: NumericSketch | None = None
    categories: dict[str, int] = field(default_factory=dict)
    other: int = 0
    tail: dict[int, int] | None = field(default_factory=dict)

    @classmethod
    def empty(cls, name: str, arrow_type: Any) -> ColumnSketch:
        kind = column_kind(arrow_type)
        if kind is None:
            raise ValueError(f"column {name!r}: no sketch for Arrow type {arrow_type}")
        numeric = NumericSketch.empty() if kind == "numeric" else None
        return cls(name=name, kind=kind, arrow_type=str(arrow_type), numeric=numeric)

    @property
    def values(self) -> int:
        return self.count - self.nulls

    def tail_counts(self) -> npt.NDArray[np.int64] | None:
        """`other` split into TAIL_BUCKETS counts; None where the split is unknown."""
        counts = np.zeros(TAIL_BUCKETS, dtype=np.int64)
        if not self.other:
            return counts
        if not self.tail:
            return None
        counts[list(self.tail)] = list(self.tail.values())
        return counts

    @property
    def null_rate(self) -> float:
        return self.nulls / self.count if self.count else 0.0

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0) of the values; 0 when there are none."""
        return math.sqrt(self.m2 / self.values) if self.values and self.m2 > 0 else 0.0

    def add_missing(self, rows: int) -> None:
        """Count `rows` rows in which the column was absent."""
        self.count += rows
        self.nulls += rows

    def update(self, values: pa.Array | pa.ChunkedArray) -> None:
        """Add one batch of the column (Arrow's all-null `null` type counts as missing)."""
        kind = column_kind(values.type)
        if kind is None and pa.types.is_null(values.type):
            self.add_missing(len(values))
            return
        if kind != self.kind:
            raise ValueError(
                f"column {self.name!r}: a {self.kind} sketch cannot take {values.type} values"
            )
        rows = len(values)
        if kind == "numeric":
            numbers = finite_numbers(values)
            if numbers.size:
                self._add_values(_numeric_batch(self.name, self.arrow_type, numbers))
            self.count += rows
            self.nulls += rows - numbers.size
        elif kind == "temporal":
            self.count += rows
            self.nulls += values.null_count
            low, high = _epoch_bounds(values)
            self.min = _extreme(min, self.min, low)
            self.max = _extreme(max, self.max, high)
        else:
            self.count += rows
            self.nulls += values.null_count
            self.categories, self.other, self.tail = _fold(
                _add_counts(self.categories, value_counts(values)), self.other, self.tail_counts()
            )

    def merge(self, other: ColumnSketch) -> ColumnSketch:
        """A new sketch of both columns' rows; `ValueError` when names or kinds differ."""
        if other.name != self.name:
            raise ValueError(f"cannot merge column {self.name!r} with column {other.name!r}")
        if other.kind != self.kind:
            raise ValueError(
                f"column {self.name!r}: cannot merge a {self.kind} sketch "
                f"with a {other.kind} sketch"
            )
        merged = ColumnSketch(
            name=self.name,
            kind=self.kind,
            arrow_type=self.arrow_type,
            count=self.count,
            nulls=self.nulls,
            min=self.min,
            max=self.max,
            mean=self.mean,
            m2=self.m2,
            numeric=self.numeric,
            categories=dict(self.categories),
            other=self.other,
            tail=None if self.tail is None else dict(self.tail),
        )
        if self.kind == "numeric":
            merged._add_values(other)
        else:
            merged.min = _extreme(min, self.min, other.min)
            merged.max = _extreme(max, self.max, other.max)
            mine, theirs = self.tail_counts(), other.tail_counts()
            merged.categories, merged.other, merged.tail = _fold(
                _add_counts(self.categories, other.categories),
                self.other + other.other,
                None if mine is None or theirs is None else mine + theirs,
            )
        merged.count += other.count
        merged.nulls += other.nulls
        return merged

    def _add_values(self, other: ColumnSketch) -> None:
        """Fold another numeric sketch's values (moments, bounds, buckets) into this one.

        Before the caller adds the other's rows and nulls: `self.values` must be the count
        these moments describe.
        """
        n_a, n_b = self.values, other.values
        if n_b:
            if n_a:
                # Chan, Golub and LeVeque's pairwise update of the mean and M2.
                n = n_a + n_b
                delta = other.mean - self.mean
                self.mean = self.mean + delta * (n_b / n)
                self.m2 = self.m2 + other.m2 + delta * delta * (n_a * n_b / n)
            else:
                self.mean, self.m2 = other.mean, other.m2
            self.min = _extreme(min, self.min, other.min)
            self.max = _extreme(max, self.max, other.max)
        mine = self.numeric or NumericSketch.empty()
        self.numeric = mine.merge(other.numeric or NumericSketch.empty())

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "arrow_type": self.arrow_type,
            "count": self.count,
            "nulls": self.nulls,
        }
        if self.kind in ("numeric", "temporal"):
            document["min"] = self.min
            document["max"] = self.max
        if self.kind == "numeric":
            # Moments of values beyond ~1e154 overflow; they are then written as unknown.
            document["mean"] = self.mean if math.isfinite(self.mean) else None
            document["m2"] = self.m2 if math.isfinite(self.m2) else None
            document["sketch"] = (self.numeric or NumericSketch.empty()).to_dict()
        if self.kind in ("categorical", "boolean"):
            document["categories"] = dict(self.categories)
            document["other"] = self.other
            document["tail"] = None if self.tail is None else _tail_document(self.tail)
        return document

    @classmethod
    def from_dict(
        cls, document: Mapping[str, Any], where: str = "column", version: int = 2
    ) -> ColumnSketch:
        """Read a stored column sketch of that document `version` (1 has no tails, no linear
        grid)."""
        if not isinstance(document, Mapping):
            raise ValueError(f"{where}: expected an object")
        name = document.get("name")
        if not isinstance(name, str):
            raise ValueError(f"{where}.name: expected a string")
        kind = document.get("kind")
        if kind not in _KINDS:
            raise ValueError(f"{where}.kind: expected one of {', '.join(_KINDS)}, got {kind!r}")
        arrow_type = document.get("arrow_type")
        if not isinstance(arrow_type, str):
            raise ValueError(f"{where}.arrow_type: expected a string")
        sketch = cls(
            name=name,
            kind=kind,
            arrow_type=arrow_type,
            count=_integer(document, "count", where),
            nulls=_integer(document, "nulls", where),
        )
        if sketch.nulls > sketch.count:
            raise ValueError(f"{where}.nulls: at most count ({sketch.count}), got {sketch.nulls}")
        if kind in ("numeric", "temporal"):
            sketch.min = _optional_float(document, "min", where)
            sketch.max = _optional_float(document, "max", where)
        if kind == "numeric":
            sketch.mean = _moment(document, "mean", where)
            sketch.m2 = _moment(document, "m2", where)
            raw_sketch = document.get("sketch")
            if not isinstance(raw_sketch, Mapping):
                raise ValueError(f"{where}.sketch: expected an object")
            sketch.numeric = NumericSketch.from_dict(raw_sketch, f"{where}.sketch", version)
            if sketch.numeric.count != sketch.values:
                raise ValueError(
                    f"{where}.sketch.count: must equal count - nulls ({sketch.values}), "
                    f"got {sketch.numeric.count}"
                )
        if kind in ("categorical", "boolean"):
            categories = document.get("categories")
            if not isinstance(categories, Mapping) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v > 0
                for k, v in categories.items()
            ):
                raise ValueError(
                    f"{where}.categories: expected an object of positive integer counts"
                )
            if len(categories) > MAX_CATEGORIES:
                raise ValueError(
                    f"{where}.categories: at most {MAX_CATEGORIES} values, got {len(categories)}"
                )
            sketch.categories = dict(categories)
            sketch.other = _integer(document, "other", where)
            if sum(categories.values()) + sketch.other != sketch.values:
                raise ValueError(
                    f"{where}.categories: counts and other must add up to count - nulls "
                    f"({sketch.values})"
                )
            sketch.tail = _tail_of(document, where, version, sketch.other)
        return sketch


def tail_bucket(value: str) -> int:
    """The tail bucket of a category: CRC-32 of its UTF-8 bytes, modulo TAIL_BUCKETS. Fixed by
    the value alone, so every sketch, on any machine, counts a value in the same bucket."""
    return zlib.crc32(value.encode("utf-8")) % TAIL_BUCKETS


def _tail_document(tail: Mapping[int, int]) -> dict[str, list[int]]:
    # Gaps between the non-zero buckets rather than their numbers: shorter in JSON.
    buckets = sorted(tail)
    gaps = [b - a for a, b in zip([0, *buckets], buckets, strict=False)]
    return {"buckets": gaps, "counts": [tail[b] for b in buckets]}


def _tail_of(
    document: Mapping[str, Any], where: str, version: int, other: int
) -> dict[int, int] | None:
    if version < 2:
        return None if other else {}
    if "tail" not in document:
        raise ValueError(f"{where}.tail: required (an object, or null where unknown)")
    raw = document["tail"]
    if raw is None:
        return None if other else {}
    where = f"{where}.tail"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected an object with buckets and counts, or null")
    gaps, counts = raw.get("buckets"), raw.get("counts")
    if not isinstance(gaps, list) or not all(
        isinstance(g, int) and not isinstance(g, bool) for g in gaps
    ):
        raise ValueError(f"{where}.buckets: expected a list of integers")
    if not isinstance(counts, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in counts
    ):
        raise ValueError(f"{where}.counts: expected a list of positive integers")
    if len(gaps) != len(counts):
        raise ValueError(f"{where}.buckets: one per count ({len(counts)}), got {len(gaps)}")
    buckets = list(accumulate(gaps))
    if any(g <= 0 for g in gaps[1:]) or (
        buckets and not 0 <= buckets[0] <= buckets[-1] < TAIL_BUCKETS
    ):
        raise ValueError(
            f"{where}.buckets: ascending buckets from 0 to {TAIL_BUCKETS - 1}, "
            "each written as its gap from the one before"
        )
    if sum(counts) != other:
        raise ValueError(f"{where}.counts: must add up to other ({other}), got {sum(counts)}")
    return dict(zip(buckets, counts, strict=True))


def _numeric_batch(name: str, arrow_type: str, numbers: npt.NDArray[Any]) -> ColumnSketch:
    """The sketch of one batch's values, for `ColumnSketch._add_values`."""
    sketch = NumericSketch.empty()
    counted = count_integers(numbers)
    # Values beyond ~1e154 overflow the moments to inf or NaN: written as unknown, no warning.
    with np.errstate(over="ignore", invalid="ignore"):
        if counted is None:
            floats = numbers.astype(np.float64, copy=False)
            mean = float(np.mean(floats))
            deviations = floats - mean
            m2 = float(np.dot(deviations, deviations))
            sketch.update(floats)
        else:
            # Integers of a narrow range: one log per distinct value, moments from the counts.
            values, counts = counted
            mean = float(np.dot(values, counts) / numbers.size)
            deviations = values - mean
            m2 = float(np.dot(deviations * deviations, counts))
            sketch.update(values, counts)
    return ColumnSketch(
        name=name,
        kind="numeric",
        arrow_type=arrow_type,
        count=numbers.size,
        nulls=0,
        min=sketch.min,
        max=sketch.max,
        mean=mean,
        m2=m2,
        numeric=sketch,
    )


def _add_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    total = dict(a)
    for key, amount in b.items():
        total[key] = total.get(key, 0) + amount
    return total


def _fold(
    categories: dict[str, int], other: int, tail: npt.NDArray[np.int64] | None
) -> tuple[dict[str, int], int, dict[int, int] | None]:
    """Keep the MAX_CATEGORIES most frequent values (ties by value); count the rest as other,
    each in its tail bucket (where the tail is known)."""
    if len(categories) > MAX_CATEGORIES:
        ranked = sorted(categories.items(), key=lambda item: (-item[1], item[0]))
        categories = dict(ranked[:MAX_CATEGORIES])
        folded = ranked[MAX_CATEGORIES:]
        amounts = np.fromiter((n for _, n in folded), dtype=np.int64, count=len(folded))
        other += int(amounts.sum())
        if tail is not None:
            buckets = np.fromiter(
                (tail_bucket(key) for key, _ in folded), dtype=np.int64, count=len(folded)
            )
            tail = tail + np.bincount(buckets, weights=amounts, minlength=TAIL_BUCKETS).astype(
                np.int64
            )
    if tail is None:
        return categories, other, None
    present = np.flatnonzero(tail)
    return categories, other, dict(zip(present.tolist(), tail[present].tolist(), strict=True))


_SECONDS: Final = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _epoch_bounds(values: pa.Array | pa.ChunkedArray) -> tuple[float | None, float | None]:
    """Oldest and newest value in epoch seconds (timestamps are UTC underneath)."""
    if len(values) == values.null_count:
        return None, None
    data_type = values.type
    if pa.types.is_timestamp(data_type):
        scale, ints = 1 / _SECONDS[data_type.unit], values.cast(pa.int64())
    elif pa.types.is_date32(data_type):
        scale, ints = 86_400.0, values.cast(pa.int32()).cast(pa.int64())
    else:  # date64: milliseconds
        scale, ints = 1 / 1_000, values.cast(pa.int64())
    bounds = pc.min_max(ints)
    return bounds["min"].as_py() * scale, bounds["max"].as_py() * scale
