"""What every drift test shares: the result, the interface, and the samples tests work on.

A drift test compares one column of a reference (training data, or an earlier window) with
the same column now. Every test declares which way it points, because the two families point
in opposite directions (the trap of mixing PSI with p-values in one threshold):

- `decision = "p_value"`: a hypothesis test; drifted when `p_value < threshold`. A small
  p-value says "these two samples are unlikely to come from one distribution"; on large
  samples it flags differences too small to matter, hence the size-based default choice.
- `decision = "statistic"` or `"score"`: a distance; drifted when that value `>= threshold`.

Tests see numbers as a `Distribution`: distinct values ascending with their counts. An exact
column and a sketch's buckets are then one shape, so each statistic has one implementation for
both, and ties (integer columns, rounded readings) cost nothing: a million integer delays with
a few hundred distinct values become a few hundred points. Categories are aligned count
vectors (one entry per category seen in either sample).

Pure: numpy and scipy.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import numpy as np
import numpy.typing as npt

from keel.serial import dump
from keel.stats.sketch import (
    ColumnSketch,
    NumericSketch,
    count_integers,
    paired_supports,
    tail_bucket,
)

__all__ = [
    "EMPTY_BIN",
    "NUMERIC_BINS",
    "BinnedTest",
    "Decision",
    "Distribution",
    "DriftResult",
    "DriftTest",
    "Measure",
    "align_counts",
    "bin_counts",
    "joint_cumulative",
    "numeric_bins",
]

Decision = Literal["p_value", "statistic", "score"]
Method = Literal["exact", "sketch"]

#: Bins for tests that compare histograms of numbers (psi, jensenshannon): the reference's
#: deciles, so each bin holds a tenth of the reference.
NUMERIC_BINS: Final = 10
#: Share given to an empty bin before taking logarithms (PSI), as Evidently does.
EMPTY_BIN: Final = 1e-4

Floats = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class DriftResult:
    """One column's verdict. `statistic` is the test's own number, as scipy gives it;
    `score` a normalised one where the test has it; `drifted` follows `decision`."""

    column: str
    kind: str
    test: str
    statistic: float
    p_value: float | None
    score: float | None
    threshold: float
    decision: Decision
    drifted: bool
    reference_count: int
    current_count: int
    method: Method

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


@dataclass(frozen=True, slots=True)
class Measure:
    """What a test computes, before a threshold turns it into a verdict."""

    statistic: float
    p_value: float | None = None
    score: float | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Distribution:
    """Numbers as distinct `values` (ascending float64) and their positive `counts`."""

    values: Floats
    counts: Counts

    @classmethod
    def of(cls, sample: npt.ArrayLike) -> Distribution:
        """The exact distribution of a sample of finite numbers.

        Integers spanning a range no wider than about four times the sample are counted
        (bincount, no sort); anything else is sorted once.
        """
        array = np.asarray(sample)
        if array.dtype.kind not in "iuf":
            raise TypeError(f"numbers expected, got an array of {array.dtype}")
        if array.size == 0:
            return cls(np.zeros(0), np.zeros(0, dtype=np.int64))
        if array.dtype.kind in "iu":
            counted = count_integers(array)
            if counted is not None:
                return cls(*counted)
            array = array.astype(np.float64)
        elif not np.isfinite(array).all():
            raise ValueError("a distribution takes finite numbers; drop NaN and infinities")
        ordered = np.sort(array.astype(np.float64, copy=False))
        return cls.of_sorted(ordered)

    @classmethod
    def of_sorted(cls, ordered: Floats) -> Distribution:
        if ordered.size == 0:
            return cls(np.zeros(0), np.zeros(0, dtype=np.int64))
        # Where a run of equal values ends: the last element, and before each change.
        ends = np.flatnonzero(ordered[1:] != ordered[:-1])
        ends = np.append(ends, ordered.size - 1)
        counts = np.diff(ends, prepend=-1).astype(np.int64)
        return cls(ordered[ends], counts)

    @classmethod
    def of_sketch(cls, sketch: NumericSketch) -> Distribution:
        """The sketch's log-grid buckets, each at its representative value."""
        values, counts = sketch.support()
        keep = counts > 0
        return cls(values[keep], counts[keep])

    @classmethod
    def of_sketches(
        cls, reference: NumericSketch, current: NumericSketch
    ) -> tuple[Distribution, Distribution]:
        """Two sketches on the grid finer for the pair (`paired_supports`)."""
        ref, cur = paired_supports(reference, current)
        return cls(*ref), cls(*cur)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def cumulative(self, x: npt.ArrayLike) -> Counts:
        """How many values are <= each x."""
        running = np.concatenate(([0], np.cumsum(self.counts)))
        result: Counts = running[np.searchsorted(self.values, x, side="right")]
        return result

    def quantiles(self, q: npt.ArrayLike) -> Floats:
        """numpy's default ("linear") quantiles of the sample these counts describe."""
        probabilities = np.asarray(q, dtype=np.float64)
        n = self.total
        # numpy's virtual index for "linear", (n - 1) q, then its _lerp: the same float
        # operations, so the result equals np.quantile on the expanded sample.
        virtual = (n - 1) * probabilities
        below = np.floor(virtual)
        gamma = virtual - below
        below_index = np.clip(below, 0, n - 1).astype(np.int64)
        above_index = np.clip(below + 1, 0, n - 1).astype(np.int64)
        running = np.cumsum(self.counts)
        a = self.values[np.searchsorted(running, below_index, side="right")]
        b = self.values[np.searchsorted(running, above_index, side="right")]
        difference = b - a
        result: Floats = np.where(
            gamma >= 0.5, b - difference * (1 - gamma), a + difference * gamma
        )
        return result

    def mean(self) -> float:
        return float(np.dot(self.values, self.counts) / self.total)

    def std(self) -> float:
        """Population standard deviation (ddof=0), as `numpy.std`."""
        deviations = self.values - self.mean()
        return math.sqrt(float(np.dot(deviations * deviations, self.counts)) / self.total)


def joint_cumulative(a: Distribution, b: Distribution) -> tuple[Floats, Counts, Counts]:
    """The distinct values of both, ascending, and how many values of each are <= each."""
    both = np.concatenate((a.values, b.values))
    # Two ascending runs: a stable sort (timsort) merges them in linear time.
    order = np.argsort(both, kind="stable")
    merged = both[order]
    from_a = order < a.values.size
    weights = np.concatenate((a.counts, b.counts))[order]
    below_a = np.cumsum(np.where(from_a, weights, 0))
    below_b = np.cumsum(np.where(from_a, 0, weights))
    # A value in both appears twice: keep its last position, where both counts include it.
    last = np.empty(merged.size, dtype=bool)
    last[-1:] = True
    np.not_equal(merged[1:], merged[:-1], out=last[:-1])
    return merged[last], below_a[last], below_b[last]


def numeric_bins(reference: Distribution) -> Floats:
    """Inner bin edges: the reference's distinct deciles (numpy's linear quantiles).

    Bins are `(-inf, e1], (e1, e2], ..., (ek, inf)`: closed on the right, so a value equal to
    an edge (ties at a quantile) falls below it, and open at both ends, so current values
    beyond the reference's range land in the outer bins. Fewer than NUMERIC_BINS bins when
    deciles coincide.
    """
    inner = np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]
    return np.unique(reference.quantiles(inner))


def bin_counts(sample: Distribution, edges: Floats) -> Counts:
    """Counts of `sample` in the bins `numeric_bins` describes by `edges`."""
    cumulative = sample.cumulative(edges)
    return np.diff(cumulative, prepend=0, append=sample.total)


def align_counts(
    reference: dict[str, int], current: dict[str, int]
) -> tuple[list[str], Counts, Counts]:
    """Both samples' counts over the union of their categories, in sorted order."""
    keys = sorted(reference.keys() | current.keys())
    ref = np.array([reference.get(k, 0) for k in keys], dtype=np.int64)
    cur = np.array([current.get(k, 0) for k in keys], dtype=np.int64)
    return keys, ref, cur


class DriftTest(ABC):
    """One statistical test: its name, direction, default threshold and the kinds it takes.

    Subclasses implement `numeric` (numbers as two `Distribution`s) and/or `categorical`
    (aligned count vectors), for the kinds they declare.
    """

    name: ClassVar[str]
    decision: ClassVar[Decision]
    default_threshold: ClassVar[float]
    kinds: ClassVar[frozenset[str]]

    def numeric(self, reference: Distribution, current: Distribution) -> Measure:
        raise TypeError(f"{self.name} does not compare numbers")

    def categorical(self, reference: Counts, current: Counts) -> Measure:
        raise TypeError(f"{self.name} does not compare categories")

    def exact(self, reference: npt.ArrayLike, current: npt.ArrayLike) -> Measure:
        """Compare two raw samples: numbers (finite) when the test takes numbers, anything
        else (strings, booleans) as categories. `ValueError` for an empty sample."""
        ref, cur = np.asarray(reference), np.asarray(current)
        if ref.size == 0 or cur.size == 0:
            raise ValueError(f"{self.name} needs at least one value in each sample")
        if "numeric" in self.kinds and ref.dtype.kind in "iuf" and cur.dtype.kind in "iuf":
            return self.numeric(Distribution.of(ref), Distribution.of(cur))
        _, ref_counts, cur_counts = align_counts(_counts(ref), _counts(cur))
        return self.categorical(ref_counts, cur_counts)

    def from_sketches(self, reference: ColumnSketch, current: ColumnSketch) -> Measure:
        """Compare two column sketches of the same kind: numbers on one grid of both (each
        value at its bin's representative: `paired_supports`), categories through their counts.

        A category is compared on its own where each side either lists it or has folded
        nothing into its tail bucket (its count there is then known); the rest of each tail
        bucket, on each side, is one more category, whose count is exact (`ColumnSketch`).
        Exact without folding; with it, values that share a tail bucket are compared as one,
        so differences among them are understated rather than invented. Where a side's tail
        is unknown (a version 1 sketch), its whole `other` is one category.
        """
        if reference.kind != current.kind:
            raise ValueError(
                f"column {reference.name!r}: cannot compare a {reference.kind} sketch "
                f"with a {current.kind} sketch"
            )
        if reference.values == 0 or current.values == 0:
            raise ValueError(f"{self.name} needs at least one value in each sample")
        if reference.kind == "numeric":
            assert reference.numeric is not None and current.numeric is not None
            return self.numeric(*Distribution.of_sketches(reference.numeric, current.numeric))
        _, ref_counts, cur_counts = align_counts(*_sketch_counts(reference, current))
        return self.categorical(ref_counts, cur_counts)

    def is_drifted(self, measure: Measure, threshold: float) -> bool:
        if self.decision == "p_value":
            return measure.p_value is not None and measure.p_value < threshold
        value = measure.statistic if self.decision == "statistic" else measure.score
        return value is not None and value >= threshold

    def result(
        self,
        measure: Measure,
        *,
        column: str,
        kind: str,
        threshold: float | None,
        reference_count: int,
        current_count: int,
        method: Method,
    ) -> DriftResult:
        """The verdict on `measure` (at the default threshold when `threshold` is None)."""
        limit = self.default_threshold if threshold is None else float(threshold)
        return DriftResult(
            column=column,
            kind=kind,
            test=self.name,
            statistic=measure.statistic,
            p_value=measure.p_value,
            score=measure.score,
            threshold=limit,
            decision=self.decision,
            drifted=self.is_drifted(measure, limit),
            reference_count=reference_count,
            current_count=current_count,
            method=method,
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name}: drifted when {self.decision} "
            f"{'<' if self.decision == 'p_value' else '>='} {self.default_threshold}>"
        )


def _counts(sample: npt.NDArray[Any]) -> dict[str, int]:
    if sample.dtype.kind == "b":
        true = int(sample.sum())
        return {k: n for k, n in (("false", sample.size - true), ("true", true)) if n}
    values, amounts = np.unique(sample, return_counts=True)
    return {str(v): int(n) for v, n in zip(values.tolist(), amounts.tolist(), strict=True)}


def _sketch_counts(
    reference: ColumnSketch, current: ColumnSketch
) -> tuple[dict[str, int], dict[str, int]]:
    """Both sketches' category counts, comparable (the rule in `DriftTest.from_sketches`)."""
    ref, cur = reference.categories, current.categories
    if not (reference.other or current.other):
        return dict(ref), dict(cur)
    ref_tail, cur_tail = reference.tail_counts(), current.tail_counts()
    if ref_tail is not None and cur_tail is not None:
        return _tail_counts(ref, ref_tail, cur, cur_tail)
    known = [
        key
        for key in ref.keys() | cur.keys()
        if (key in ref or not reference.other) and (key in cur or not current.other)
    ]
    ref_known = {key: ref.get(key, 0) for key in known}
    cur_known = {key: cur.get(key, 0) for key in known}
    # A key no category can clash with: stored categories are the column's own strings.
    ref_known["\x00other"] = reference.values - sum(ref_known.values())
    cur_known["\x00other"] = current.values - sum(cur_known.values())
    return ref_known, cur_known


def _tail_counts(
    ref: dict[str, int], ref_tail: Counts, cur: dict[str, int], cur_tail: Counts
) -> tuple[dict[str, int], dict[str, int]]:
    """`_sketch_counts` where both sides split their folded values into tail buckets.

    A listed value is compared on its own only where neither side folded anything into its
    bucket. Which values stay listed depends on the order rows were sketched and merged in
    (a value listed in one part and folded in another is listed with a partial count), but
    how many values hash to each bucket does not: so a bucket with folded values is compared
    as a whole, listed values included, and the comparison is the same after any merge."""
    bucket = {key: tail_bucket(key) for key in ref.keys() | cur.keys()}
    known = [key for key, b in bucket.items() if not ref_tail[b] and not cur_tail[b]]
    ref_known = {key: ref.get(key, 0) for key in known}
    cur_known = {key: cur.get(key, 0) for key in known}
    # Each bucket's rest: its tail plus the listed values not compared on their own.
    ref_rest, cur_rest = ref_tail.copy(), cur_tail.copy()
    for counts, rest in ((ref, ref_rest), (cur, cur_rest)):
        for key, amount in counts.items():
            if key not in ref_known:
                rest[bucket[key]] += amount
    # Keys no category can clash with: stored categories are the column's own strings.
    for b in np.flatnonzero(ref_rest + cur_rest).tolist():
        ref_known[f"\x00tail {b}"] = int(ref_rest[b])
        cur_known[f"\x00tail {b}"] = int(cur_rest[b])
    return ref_known, cur_known


class BinnedTest(DriftTest):
    """A distance between two histograms (psi, jensenshannon): categories as they are,
    numbers binned on the reference's deciles (`numeric_bins`), decided on the statistic."""

    decision: ClassVar[Decision] = "statistic"
    default_threshold: ClassVar[float] = 0.1
    kinds: ClassVar[frozenset[str]] = frozenset({"numeric", "categorical", "boolean"})

    @abstractmethod
    def distance(self, reference: Counts, current: Counts) -> float:
        """The distance between two aligned count vectors."""

    def numeric(self, reference: Distribution, current: Distribution) -> Measure:
        edges = numeric_bins(reference)
        return self.categorical(bin_counts(reference, edges), bin_counts(current, edges))

    def categorical(self, reference: Counts, current: Counts) -> Measure:
        return Measure(statistic=self.distance(reference, current))
