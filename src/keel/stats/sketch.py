"""Mergeable column sketches: what a stream of batches looks like, in bounded memory.

    sketch = TableSketch.of(batch)            # one window, or one segment of the prediction log
    sketch.update(next_batch)                 # streaming: once per batch
    day = morning.merge(afternoon)            # the same as sketching both batches together
    stored = sketch.to_json()                 # a few KB per column, whatever the row count

Monitoring compares windows of production data with a reference, and the windows are built
from segments written at different times. Keeping the raw rows is too big, and exact profiles
(`keel.stats.profile`) cannot be merged; so each column keeps a summary that is small, can be
updated batch by batch, and merges exactly:

- numbers: a DDSketch-style histogram (Masson, Rim and Lee, VLDB 2019). A value x > 0 goes to
  bucket `ceil(log(x) / log(gamma))` with `gamma = (1 + a) / (1 - a)` and `a =
  RELATIVE_ACCURACY`; negatives go to a mirror set of buckets on |x|, zeros to a counter of
  their own. Each bucket stands for its values by `2 gamma^i / (gamma + 1)`, which is within a
  relative `a` of every value in it, so quantiles are within 0.5% of the true value. Buckets
  are fixed by the value alone, so two sketches add bucket for bucket: merging is exact, in any
  order. At most `MAX_BUCKETS` buckets are kept per sign: past that, the buckets of smallest
  magnitude are folded into the lowest kept one (values more than ~6e17 times smaller than
  the largest, whose accuracy is then lost). The fold depends only on the largest bucket, so
  merging stays exact even then. Count, mean and M2 (sum of squared deviations) are kept beside
  it and merged with Chan et al.'s pairwise update (exact up to float rounding);
- categories (strings, dictionaries) and booleans (`"true"`/`"false"`): exact counts per value
  up to `MAX_CATEGORIES` distinct values; beyond that the rarest are folded into `other`, and
  merges of folded sketches are approximate (a value rare in both halves may be folded out
  though it would have made the cut on the whole);
- timestamps and dates: the oldest and newest value (epoch seconds), and the null count.

Nulls, and NaN and infinities in float columns, count as missing: they add to `nulls`, not to
the distributions. A column a batch lacks (or holds as Arrow's all-null `null` type) counts
those rows as missing, and so does a column that first appears after some rows: every column's
`count` equals the table's `rows`. Columns of other types (lists, structs, binary) are left out.

Pure: numpy and pyarrow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "MAX_BUCKETS",
    "MAX_CATEGORIES",
    "RELATIVE_ACCURACY",
    "SKETCH_KIND",
    "SKETCH_VERSION",
    "ColumnKind",
    "ColumnSketch",
    "NumericSketch",
    "TableSketch",
    "column_kind",
    "count_integers",
    "finite_numbers",
    "value_counts",
]

SKETCH_KIND: Final = "keel/sketch"
SKETCH_VERSION: Final = 1
#: Every value a numeric sketch reports is within this relative error of a true value.
RELATIVE_ACCURACY: Final = 0.005
#: Buckets kept per sign: magnitudes spanning a factor gamma**4096 (~6e17) stay accurate.
MAX_BUCKETS: Final = 4096
MAX_CATEGORIES: Final = 1000

_GAMMA: Final = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA: Final = math.log(_GAMMA)
_MULTIPLIER: Final = 1 / _LOG_GAMMA
#: log(2 / (gamma + 1)): a bucket's representative is 2 gamma^i / (gamma + 1).
_LOG_HALF_WIDTH: Final = math.log(2 / (_GAMMA + 1))

ColumnKind = Literal["numeric", "categorical", "boolean", "temporal"]
_KINDS: Final = ("numeric", "categorical", "boolean", "temporal")

Floats = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]


# --- reading Arrow columns -------------------------------------------------------------------


def column_kind(data_type: Any) -> ColumnKind | None:
    """The sketch kind of an Arrow type; None for types keel does not summarise (and `null`)."""
    if (
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    ):
        return "numeric"
    if (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_string_view(data_type)
        or pa.types.is_dictionary(data_type)
    ):
        return "categorical"
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_timestamp(data_type) or pa.types.is_date(data_type):
        return "temporal"
    return None


def finite_numbers(values: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int64 | np.float64]:
    """The column's values without nulls, NaN or infinities, as a read-only numpy array.

    Integers of up to 64 bits (except uint64) come back as int64, so that callers can count
    them without sorting; every other number type as float64.
    """
    data_type = values.type
    present = pc.drop_null(values) if values.null_count else values
    if pa.types.is_integer(data_type) and data_type != pa.uint64():
        ints: npt.NDArray[np.int64] = _to_numpy(present.cast(pa.int64()), np.int64)
        return ints
    # safe=False: int64 beyond 2**53 and decimals round to the nearest double, as intended.
    floats: Floats = _to_numpy(pc.cast(present, pa.float64(), safe=False), np.float64)
    finite = np.isfinite(floats)
    return floats if finite.all() else floats[finite]


def count_integers(numbers: npt.NDArray[Any]) -> tuple[Floats, Counts] | None:
    """Distinct values (ascending, as float64) and their counts, for integers spanning a range
    no wider than about four times their number: one bincount, no sort. None otherwise."""
    if numbers.dtype.kind not in "iu" or numbers.size == 0:
        return None
    low, high = int(numbers.min()), int(numbers.max())
    if high - low > 4 * numbers.size + 1024:
        return None
    counted = np.bincount((numbers - low).astype(np.intp, copy=False))
    present = np.flatnonzero(counted)
    return (present + low).astype(np.float64), counted[present].astype(np.int64)


def value_counts(values: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """Non-null value -> count, values as strings (booleans as "true"/"false")."""
    if pa.types.is_boolean(values.type):
        true = pc.sum(values.cast(pa.int64())).as_py() or 0
        false = len(values) - values.null_count - true
        return {k: v for k, v in (("false", false), ("true", true)) if v}
    counted = pc.value_counts(values)
    keys = counted.field("values").to_pylist()
    amounts = counted.field("counts").to_pylist()
    return {str(k): int(n) for k, n in zip(keys, amounts, strict=True) if k is not None}


def _to_numpy(values: pa.Array | pa.ChunkedArray, dtype: type[np.generic]) -> Any:
    """A null-free fixed-width Arrow array as numpy, without a copy where it is one chunk.

    Through the buffer rather than `to_numpy`, which imports pandas (seconds, and ~50 MB).
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if len(values) == 0:
        return np.zeros(0, dtype=dtype)
    width = np.dtype(dtype).itemsize
    return np.frombuffer(
        values.buffers()[1], dtype=dtype, count=len(values), offset=values.offset * width
    )


# --- numbers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Buckets:
    """Counts of the consecutive bucket indices `offset, offset + 1, ...`.

    Canonical: no zero count at either end, and at most MAX_BUCKETS long, so that equal
    contents are equal objects (and equal JSON).
    """

    offset: int
    counts: Counts

    @classmethod
    def empty(cls) -> _Buckets:
        return cls(0, np.zeros(0, dtype=np.int64))

    @classmethod
    def of(cls, magnitudes: Floats, counts: Counts | None = None) -> _Buckets:
        """Bucket positive finite values (each `counts` times); one log and one bincount, no
        loop per value."""
        if magnitudes.size == 0:
            return cls.empty()
        indices = np.ceil(np.log(magnitudes) * _MULTIPLIER).astype(np.int64)
        low = int(indices.min())
        # The span of indices is bounded (~142,000 over all of float64), whatever the input.
        # Weights add up in float64: exact for totals below 2**53.
        tally = np.bincount(indices - low, weights=counts)
        return cls.canonical(low, tally.astype(np.int64))

    @classmethod
    def canonical(cls, offset: int, counts: Counts) -> _Buckets:
        nonzero = np.flatnonzero(counts)
        if nonzero.size == 0:
            return cls.empty()
        first, last = int(nonzero[0]), int(nonzero[-1])
        counts = counts[first : last + 1]
        offset += first
        if counts.size > MAX_BUCKETS:
            # Fold the smallest magnitudes into the lowest kept bucket. Which buckets fold
            # depends only on the highest index, so any merge order gives the same result.
            excess = counts.size - MAX_BUCKETS
            folded = int(counts[:excess].sum())
            counts = counts[excess:].copy()
            counts[0] += folded
            offset += excess
        return cls(offset, np.ascontiguousarray(counts, dtype=np.int64))

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def add(self, other: _Buckets) -> _Buckets:
        if other.counts.size == 0:
            return self
        if self.counts.size == 0:
            return other
        low = min(self.offset, other.offset)
        high = max(self.offset + self.counts.size, other.offset + other.counts.size)
        counts = np.zeros(high - low, dtype=np.int64)
        counts[self.offset - low : self.offset - low + self.counts.size] += self.counts
        counts[other.offset - low : other.offset - low + other.counts.size] += other.counts
        return _Buckets.canonical(low, counts)

    def representatives(self) -> Floats:
        """Each bucket's value: 2 gamma^i / (gamma + 1), ascending."""
        indices = np.arange(self.offset, self.offset + self.counts.size, dtype=np.float64)
        # In logs, and capped: the top bucket of float64's range stands above its largest value.
        with np.errstate(over="ignore"):
            values = np.exp(indices * _LOG_GAMMA + _LOG_HALF_WIDTH)
        result: Floats = np.minimum(values, np.finfo(np.float64).max)
        return result

    def to_dict(self) -> dict[str, Any]:
        return {"offset": self.offset, "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, document: Any, where: str) -> _Buckets:
        if not isinstance(document, Mapping):
            raise ValueError(f"{where}: expected an object with offset and counts")
        offset = _integer(document, "offset", where, minimum=None)
        raw = document.get("counts")
        if not isinstance(raw, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in raw
        ):
            raise ValueError(f"{where}.counts: expected a list of non-negative integers")
        if len(raw) > MAX_BUCKETS:
            raise ValueError(f"{where}.counts: at most {MAX_BUCKETS} buckets, got {len(raw)}")
        return cls.canonical(offset, np.array(raw, dtype=np.int64))


class NumericSketch:
    """A log-bucketed histogram of numbers: bounded size, exactly mergeable.

    `merge` and `update` give the same buckets as sketching all the values at once, in any
    order; `quantiles` are within RELATIVE_ACCURACY (relative) of the exact lower quantile,
    for values within the MAX_BUCKETS range of the largest magnitude.
    """

    __slots__ = ("_count", "_max", "_min", "_negative", "_positive", "_zero")

    def __init__(
        self,
        *,
        positive: _Buckets,
        negative: _Buckets,
        zero: int,
        low: float | None,
        high: float | None,
    ) -> None:
        self._positive = positive
        self._negative = negative
        self._zero = zero
        self._count = positive.total + negative.total + zero
        self._min = low
        self._max = high

    @classmethod
    def empty(cls) -> NumericSketch:
        return cls(
            positive=_Buckets.empty(), negative=_Buckets.empty(), zero=0, low=None, high=None
        )

    @classmethod
    def of(cls, values: npt.ArrayLike) -> NumericSketch:
        sketch = cls.empty()
        sketch.update(np.asarray(values, dtype=np.float64))
        return sketch

    def update(self, values: npt.NDArray[Any], counts: npt.NDArray[Any] | None = None) -> None:
        """Add finite values (callers drop NaN, infinities and nulls first), or, with
        `counts`, each of `values` that many times (the same buckets, one log per value)."""
        # Contiguous float64: the vectorised log then sees every value the same way.
        values = np.ascontiguousarray(values, dtype=np.float64)
        if counts is not None:
            counts = np.asarray(counts, dtype=np.int64)
            if counts.shape != values.shape or np.any(counts < 0):
                raise ValueError("counts: one non-negative count per value")
            values, counts = values[counts > 0], counts[counts > 0]
        if values.size == 0:
            return
        low, high = float(values.min()), float(values.max())
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError("a numeric sketch takes finite values only")
        positive, negative = values > 0, values < 0
        if counts is None:
            self._positive = self._positive.add(_Buckets.of(values[positive]))
            self._negative = self._negative.add(_Buckets.of(-values[negative]))
            total = values.size
            zero = total - int(np.count_nonzero(positive)) - int(np.count_nonzero(negative))
        else:
            self._positive = self._positive.add(_Buckets.of(values[positive], counts[positive]))
            self._negative = self._negative.add(_Buckets.of(-values[negative], counts[negative]))
            total = int(counts.sum())
            zero = int(counts[values == 0].sum())
        self._zero += zero
        self._count += total
        self._min = low if self._min is None else min(self._min, low)
        self._max = high if self._max is None else max(self._max, high)

    def merge(self, other: NumericSketch) -> NumericSketch:
        """A new sketch of both sketches' values; neither input changes."""
        return NumericSketch(
            positive=self._positive.add(other._positive),
            negative=self._negative.add(other._negative),
            zero=self._zero + other._zero,
            low=_extreme(min, self._min, other._min),
            high=_extreme(max, self._max, other._max),
        )

    @property
    def count(self) -> int:
        return self._count

    @property
    def min(self) -> float | None:
        return self._min

    @property
    def max(self) -> float | None:
        return self._max

    def support(self) -> tuple[Floats, Counts]:
        """Ascending representative values (negatives, zero, positives) and their counts.

        Representatives are the buckets' own values, not clamped to min and max: two sketches
        then share one grid, which the drift tests rely on.
        """
        parts_values = [-self._negative.representatives()[::-1]]
        parts_counts = [self._negative.counts[::-1]]
        if self._zero:
            parts_values.append(np.zeros(1))
            parts_counts.append(np.array([self._zero], dtype=np.int64))
        parts_values.append(self._positive.representatives())
        parts_counts.append(self._positive.counts)
        values: Floats = np.concatenate(parts_values)
        counts: Counts = np.concatenate(parts_counts).astype(np.int64)
        return values, counts

    def cdf(self, x: npt.ArrayLike) -> Floats:
        """Share of values <= x, where a value counts as its bucket's representative.

        NaN where the sketch is empty.
        """
        points = np.asarray(x, dtype=np.float64)
        if self._count == 0:
            return np.full(points.shape, np.nan)
        values, counts = self.support()
        cumulative = np.concatenate(([0], np.cumsum(counts)))
        shares: Floats = cumulative[np.searchsorted(values, points, side="right")] / self._count
        return shares

    def quantiles(self, q: npt.ArrayLike) -> Floats:
        """The value at rank floor(q * (count - 1)) of the sorted values (numpy's "lower"), as
        its bucket's representative clamped to [min, max]; NaN where the sketch is empty."""
        probabilities = np.asarray(q, dtype=np.float64)
        if np.any((probabilities < 0) | (probabilities > 1) | np.isnan(probabilities)):
            raise ValueError("quantiles take probabilities between 0 and 1")
        if self._count == 0 or self._min is None or self._max is None:
            return np.full(probabilities.shape, np.nan)
        values, counts = self.support()
        cumulative = np.cumsum(counts)
        ranks = np.floor(probabilities * (self._count - 1))
        # The first bucket holding more than `rank` values holds the value at that rank.
        positions = np.searchsorted(cumulative, ranks, side="right")
        result: Floats = np.clip(values[positions], self._min, self._max)
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "relative_accuracy": RELATIVE_ACCURACY,
            "count": self._count,
            "zero": self._zero,
            "min": self._min,
            "max": self._max,
            "positive": self._positive.to_dict(),
            "negative": self._negative.to_dict(),
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], where: str = "numeric") -> NumericSketch:
        if not isinstance(document, Mapping):
            raise ValueError(f"{where}: expected an object")
        if document.get("relative_accuracy") != RELATIVE_ACCURACY:
            raise ValueError(
                f"{where}.relative_accuracy: this keel reads sketches of accuracy "
                f"{RELATIVE_ACCURACY}, got {document.get('relative_accuracy')!r}"
            )
        sketch = cls(
            positive=_Buckets.from_dict(document.get("positive"), f"{where}.positive"),
            negative=_Buckets.from_dict(document.get("negative"), f"{where}.negative"),
            zero=_integer(document, "zero", where),
            low=_optional_float(document, "min", where),
            high=_optional_float(document, "max", where),
        )
        count = _integer(document, "count", where)
        if count != sketch.count:
            raise ValueError(
                f"{where}.count: must equal the buckets' total ({sketch.count}), got {count}"
            )
        if (sketch.min is None) != (count == 0) or (sketch.max is None) != (count == 0):
            raise ValueError(f"{where}.min, max: required exactly when count is positive")
        return sketch

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NumericSketch) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"NumericSketch(count={self._count}, min={self._min}, max={self._max})"


def _extreme(pick: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(pick(a, b))


# --- columns ---------------------------------------------------------------------------------


@dataclass(eq=True)
class ColumnSketch:
    """One column's summary. `count` is rows seen, nulls included; `values` the rest.

    `mean` and `m2` (sum of squared deviations from the mean) describe the non-missing values
    of a numeric column; `min` and `max` those of numeric and temporal columns (temporal as
    epoch seconds). `categories` and `other` are for categorical and boolean columns.
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
            self.categories, self.other = _fold(
                _add_counts(self.categories, value_counts(values)), self.other
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
        )
        if self.kind == "numeric":
            merged._add_values(other)
        else:
            merged.min = _extreme(min, self.min, other.min)
            merged.max = _extreme(max, self.max, other.max)
            merged.categories, merged.other = _fold(
                _add_counts(self.categories, other.categories), self.other + other.other
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
        return document

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], where: str = "column") -> ColumnSketch:
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
            sketch.numeric = NumericSketch.from_dict(raw_sketch, f"{where}.sketch")
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
        return sketch


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


def _fold(categories: dict[str, int], other: int) -> tuple[dict[str, int], int]:
    """Keep the MAX_CATEGORIES most frequent values (ties by value); count the rest as other."""
    if len(categories) <= MAX_CATEGORIES:
        return categories, other
    ranked = sorted(categories.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:MAX_CATEGORIES])
    return kept, other + sum(amount for _, amount in ranked[MAX_CATEGORIES:])


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


# --- tables ----------------------------------------------------------------------------------


@dataclass(eq=True)
class TableSketch:
    """Sketches of a table's columns, updated batch by batch and merged window by window."""

    columns: dict[str, ColumnSketch] = field(default_factory=dict)
    rows: int = 0

    @classmethod
    def of(cls, table: pa.Table, columns: Sequence[str] | None = None) -> TableSketch:
        """Sketch `table`, or only the named `columns` (`ValueError` for a column it lacks)."""
        if columns is not None:
            missing = [name for name in columns if name not in table.column_names]
            if missing:
                raise ValueError(f"table has no column {', '.join(map(repr, missing))}")
            table = table.select(list(columns))
        sketch = cls()
        sketch.update(table)
        return sketch

    def update(self, table: pa.Table) -> None:
        """Add one batch. Every column of `table` of a summarised type is sketched: a column
        seen for the first time counts the rows before it as missing, and a column this batch
        lacks counts the batch's rows as missing."""
        rows = table.num_rows
        present: set[str] = set()
        for index, arrow_field in enumerate(table.schema):
            name = arrow_field.name
            if name in present:
                raise ValueError(f"table has two columns named {name!r}")
            present.add(name)
            values = table.column(index)
            sketch = self.columns.get(name)
            if sketch is None:
                if column_kind(values.type) is None:
                    continue
                sketch = ColumnSketch.empty(name, values.type)
                sketch.add_missing(self.rows)
                self.columns[name] = sketch
            sketch.update(values)
        for name, sketch in self.columns.items():
            if name not in present:
                sketch.add_missing(rows)
        self.rows += rows

    def merge(self, other: TableSketch) -> TableSketch:
        """A new sketch of both tables' rows; a column one side lacks is missing there."""
        merged: dict[str, ColumnSketch] = {}
        for name in [*self.columns, *(n for n in other.columns if n not in self.columns)]:
            mine, theirs = self.columns.get(name), other.columns.get(name)
            if mine is None:
                assert theirs is not None
                mine = _all_missing(theirs, self.rows)
            if theirs is None:
                theirs = _all_missing(mine, other.rows)
            merged[name] = mine.merge(theirs)
        return TableSketch(columns=merged, rows=self.rows + other.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": SKETCH_KIND,
            "version": SKETCH_VERSION,
            "rows": self.rows,
            "max_buckets": MAX_BUCKETS,
            "max_categories": MAX_CATEGORIES,
            "columns": [column.to_dict() for column in self.columns.values()],
        }

    def to_json(self) -> bytes:
        """Canonical JSON (sorted keys, no spaces): the same sketch is always the same bytes."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> TableSketch:
        """Read a stored sketch; `ValueError` naming the field for anything malformed."""
        if not isinstance(document, Mapping):
            raise ValueError("not a keel sketch: expected an object")
        if document.get("kind") != SKETCH_KIND:
            raise ValueError(f"kind: not a keel sketch, kind is {document.get('kind')!r}")
        if document.get("version") != SKETCH_VERSION:
            raise ValueError(
                f"version: this keel reads sketch version {SKETCH_VERSION}, "
                f"got {document.get('version')!r}; upgrade keelml"
            )
        for key, expected in (("max_buckets", MAX_BUCKETS), ("max_categories", MAX_CATEGORIES)):
            if document.get(key) != expected:
                raise ValueError(f"{key}: this keel uses {expected}, got {document.get(key)!r}")
        rows = _integer(document, "rows", "sketch")
        raw_columns = document.get("columns")
        if not isinstance(raw_columns, list):
            raise ValueError("columns: expected a list")
        columns: dict[str, ColumnSketch] = {}
        for position, raw in enumerate(raw_columns):
            where = f"columns[{position}]"
            column = ColumnSketch.from_dict(raw, where)
            if column.name in columns:
                raise ValueError(f"{where}.name: column {column.name!r} appears twice")
            if column.count != rows:
                raise ValueError(f"{where}.count: must equal rows ({rows}), got {column.count}")
            columns[column.name] = column
        return cls(columns=columns, rows=rows)

    @classmethod
    def from_json(cls, data: bytes | str) -> TableSketch:
        try:
            document = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a keel sketch: invalid JSON: {exc}") from None
        return cls.from_dict(document)


def _all_missing(like: ColumnSketch, rows: int) -> ColumnSketch:
    sketch = ColumnSketch(
        name=like.name,
        kind=like.kind,
        arrow_type=like.arrow_type,
        numeric=NumericSketch.empty() if like.kind == "numeric" else None,
    )
    sketch.add_missing(rows)
    return sketch


# --- validation of stored documents -----------------------------------------------------------


def _integer(document: Mapping[str, Any], key: str, where: str, minimum: int | None = 0) -> int:
    value = document.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{where}.{key}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{where}.{key}: must be at least {minimum}, got {value}")
    return value


def _optional_float(document: Mapping[str, Any], key: str, where: str) -> float | None:
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{where}.{key}: expected a finite number or null, got {value!r}")
    return float(value)


def _moment(document: Mapping[str, Any], key: str, where: str) -> float:
    if key not in document:
        raise ValueError(f"{where}.{key}: required")
    value = _optional_float(document, key, where)
    # null: the moment overflowed when written (values beyond ~1e154).
    return math.nan if value is None else value
