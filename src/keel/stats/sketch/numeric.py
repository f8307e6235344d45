"""The number sketch: two exactly mergeable histograms of the same values, one whose bins are
relative to each value (DDSketch-style) and one whose bins are relative to the column's spread."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from keel.stats.sketch.arrow import Counts, Floats
from keel.stats.sketch.documents import _integer, _optional_float
from keel.stats.sketch.linear import LinearGrid

__all__ = ["MAX_BUCKETS", "RELATIVE_ACCURACY", "NumericSketch", "paired_supports"]


#: Every value a numeric sketch reports is within this relative error of a true value.
RELATIVE_ACCURACY: Final = 0.005
#: Buckets kept per sign: magnitudes spanning a factor gamma**4096 (~6e17) stay accurate.
MAX_BUCKETS: Final = 4096


_GAMMA: Final = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA: Final = math.log(_GAMMA)
_MULTIPLIER: Final = 1 / _LOG_GAMMA
#: log(2 / (gamma + 1)): a bucket's representative is 2 gamma^i / (gamma + 1).
_LOG_HALF_WIDTH: Final = math.log(2 / (_GAMMA + 1))


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
    """Two histograms of the same numbers, both of bounded size and exactly mergeable.

    The log grid (DDSketch-style buckets) knows every value to RELATIVE_ACCURACY of itself:
    right for long tails, coarse for values far from zero relative to their spread. The linear
    grid (`LinearGrid`) knows every value to a width set by where the values are: right for such
    offset columns, coarse for long tails. Drift tests compare two sketches on the grid finer
    for the pair (`paired_supports`); `support`, `cdf` and `quantiles` read the log grid.

    `merge` and `update` give the same buckets and bins as sketching all the values at once,
    in any order; `quantiles` are within RELATIVE_ACCURACY (relative) of the exact lower
    quantile, for values within the MAX_BUCKETS range of the largest magnitude. A sketch read
    from a version 1 document has no linear grid (`has_linear` is False), nor has a merge
    with one.
    """

    __slots__ = ("_count", "_linear", "_max", "_min", "_negative", "_positive", "_zero")

    def __init__(
        self,
        *,
        positive: _Buckets,
        negative: _Buckets,
        zero: int,
        low: float | None,
        high: float | None,
        linear: LinearGrid | None,
    ) -> None:
        self._positive = positive
        self._negative = negative
        self._zero = zero
        self._linear = linear
        self._count = positive.total + negative.total + zero
        self._min = low
        self._max = high

    @classmethod
    def empty(cls) -> NumericSketch:
        return cls(
            positive=_Buckets.empty(),
            negative=_Buckets.empty(),
            zero=0,
            low=None,
            high=None,
            linear=LinearGrid.empty(),
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
        if self._linear is not None:
            self._linear = self._linear.add(LinearGrid.of(values, counts))
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
            linear=(
                self._linear.add(other._linear)
                if self._linear is not None and other._linear is not None
                else None
            ),
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

    @property
    def has_linear(self) -> bool:
        return self._linear is not None

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
            "linear": None if self._linear is None else self._linear.to_dict(),
        }

    @classmethod
    def from_dict(
        cls, document: Mapping[str, Any], where: str = "numeric", version: int = 2
    ) -> NumericSketch:
        """Read a stored sketch; version 1 documents have no linear grid."""
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
            linear=_linear_of(document, where, version),
        )
        count = _integer(document, "count", where)
        if count != sketch.count:
            raise ValueError(
                f"{where}.count: must equal the buckets' total ({sketch.count}), got {count}"
            )
        if (sketch.min is None) != (count == 0) or (sketch.max is None) != (count == 0):
            raise ValueError(f"{where}.min, max: required exactly when count is positive")
        if sketch._linear is not None and sketch._linear.total != count:
            raise ValueError(
                f"{where}.linear.counts: must add up to count ({count}), got {sketch._linear.total}"
            )
        return sketch

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NumericSketch) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"NumericSketch(count={self._count}, min={self._min}, max={self._max})"


def _linear_of(document: Mapping[str, Any], where: str, version: int) -> LinearGrid | None:
    if version < 2:
        return None
    if "linear" not in document:
        raise ValueError(f"{where}.linear: required (an object, or null where unknown)")
    raw = document["linear"]
    return None if raw is None else LinearGrid.from_dict(raw, f"{where}.linear")


def paired_supports(
    a: NumericSketch, b: NumericSketch
) -> tuple[tuple[Floats, Counts], tuple[Floats, Counts]]:
    """Both sketches' values on one grid, the finer for this pair: each value at its bucket's
    or bin's representative, ascending, with the counts (no zero count).

    The linear grid at the coarser of the two widths w (so both share its bins), each value at
    its bin's middle, moves every value by at most w / 2; the log grid moves a value x by at
    most RELATIVE_ACCURACY |x|. The grid that moves the values less on average (w / 2 against
    RELATIVE_ACCURACY times the mean |x| of both) is taken; the log grid where either sketch
    has no linear one. Ties go to the linear grid, whose bins hold integers one by one.
    """
    linear_a, linear_b = a._linear, b._linear
    if linear_a is None or linear_b is None or not (linear_a.total and linear_b.total):
        return _log_support(a), _log_support(b)
    exponent = max(linear_a.exponent, linear_b.exponent)
    log_a, log_b = _log_support(a), _log_support(b)
    magnitude = (np.dot(np.abs(log_a[0]), log_a[1]) + np.dot(np.abs(log_b[0]), log_b[1])) / (
        a.count + b.count
    )
    if math.ldexp(0.5, exponent) > RELATIVE_ACCURACY * magnitude:
        return log_a, log_b
    return _linear_support(linear_a, exponent), _linear_support(linear_b, exponent)


def _log_support(sketch: NumericSketch) -> tuple[Floats, Counts]:
    values, counts = sketch.support()
    keep = counts > 0
    return values[keep], counts[keep]


def _linear_support(linear: LinearGrid, exponent: int) -> tuple[Floats, Counts]:
    bins, counts = linear.at(exponent)
    with np.errstate(over="ignore"):
        middles = np.ldexp(bins.astype(np.float64) + 0.5, exponent)
    # The top bins of float64's range stand partly above its largest value.
    values: Floats = np.clip(middles, -np.finfo(np.float64).max, np.finfo(np.float64).max)
    return values, counts


def _extreme(pick: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(pick(a, b))
