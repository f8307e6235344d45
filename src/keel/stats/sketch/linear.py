"""The linear grid of a number sketch: counts in bins of one width, a power of two set by where
the values are, so that readings far from zero relative to their spread keep their shape."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from keel.stats.sketch.arrow import Counts, Floats
from keel.stats.sketch.documents import _integer

__all__ = ["LINEAR_BINS", "LinearGrid"]


#: Most occupied bins of the linear grid: its width is the finest power of two that needs no more.
LINEAR_BINS: Final = 1024

Ints = npt.NDArray[np.int64]
#: Below the finest grid of the smallest float64 (2**-1074 < 2**-1073, so 2**(-1073 - 52)).
_FINEST: Final = -1126


@dataclass(frozen=True, slots=True)
class LinearGrid:
    """Counts of values in bins of width 2**exponent: bin b holds [b 2**e, (b + 1) 2**e).

    The width is the finest power of two at which at most LINEAR_BINS bins are occupied, and
    no finer than 2**(E - 52) for values below 2**E in magnitude (finer bins would split
    hardly anything float64 tells apart, and bin numbers stay below 2**52). Both rules grow
    with the values seen, and halving the resolution only joins bins, so the grid of a merge
    is the grid of the concatenation: merging is exact, in any order. Outliers cost one bin
    each: the width follows where the values are, not the range they span. Only the occupied
    bins are kept (`bins` ascending, `counts` > 0).
    """

    exponent: int
    bins: Ints
    counts: Counts

    @classmethod
    def empty(cls) -> LinearGrid:
        return cls(0, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    @classmethod
    def of(cls, values: Floats, counts: Counts | None = None) -> LinearGrid:
        """Bin finite values (each `counts` times): bincounts, or one sort, no loop per value."""
        if values.size == 0:
            return cls.empty()
        low, high = float(values.min()), float(values.max())
        magnitude = max(abs(low), abs(high))
        # Zeros alone get the finest grid of all, so that it only grows with the values seen.
        finest = math.frexp(magnitude)[1] - 52 if magnitude else _FINEST
        # Where the range needs every bin at a width (the rule's answer unless values cluster),
        # two bincounts find it without sorting: the values of most continuous columns.
        spanned = _spanning_exponent(low, high, finest)
        if spanned > finest:
            finer = _bin(values, spanned - 1)
            position = finer - finer.min()
            tally = np.bincount(position, weights=counts)
            occupied = np.flatnonzero(tally)
            if occupied.size > LINEAR_BINS:
                bins = _bin(values, spanned)
                first = int(bins.min())
                tally = np.bincount(bins - first, weights=counts)
                occupied = np.flatnonzero(tally)
                return cls(spanned, occupied + first, tally[occupied].astype(np.int64))
            # Readings to a fixed precision (0.1 hPa): where every occupied bin holds one
            # distinct value, each stays alone at every finer width, so the finest width is
            # the answer and those values are all it needs, without sorting the column.
            smallest = np.full(tally.size, np.inf)
            largest = np.full(tally.size, -np.inf)
            np.minimum.at(smallest, position, values)
            np.maximum.at(largest, position, values)
            if np.array_equal(smallest[occupied], largest[occupied]):
                distinct = smallest[occupied]
                return cls(finest, *_runs(_bin(distinct, finest), tally[occupied].astype(np.int64)))
        bins = _bin(values, finest)
        exponent = finest
        if counts is None:
            # A plain sort: a third of the time of argsort, and every weight is 1.
            return cls.fitted(exponent, *_runs(np.sort(bins), np.ones(bins.size, np.int64)))
        order = np.argsort(bins)
        return cls.fitted(exponent, *_runs(bins[order], counts[order]))

    @classmethod
    def fitted(cls, exponent: int, bins: Ints, counts: Counts) -> LinearGrid:
        """The grid at `exponent`, widened until at most LINEAR_BINS bins are occupied."""
        if bins.size <= LINEAR_BINS:
            return cls(exponent, bins, counts)
        # Occupancy only falls as bins widen: the fewest halvings that fit, by bisection.
        low, high = 1, 63
        while low < high:
            middle = (low + high) // 2
            if _occupied(bins >> middle) <= LINEAR_BINS:
                high = middle
            else:
                low = middle + 1
        return cls(exponent + low, *_runs(bins >> low, counts))

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def at(self, exponent: int) -> tuple[Ints, Counts]:
        """Bins and counts at a width of 2**exponent, no finer than this grid's."""
        shift = exponent - self.exponent
        if shift == 0:
            return self.bins, self.counts
        return _runs(self.bins >> min(shift, 63), self.counts)

    def add(self, other: LinearGrid) -> LinearGrid:
        if other.bins.size == 0:
            return self
        if self.bins.size == 0:
            return other
        exponent = max(self.exponent, other.exponent)
        mine, theirs = self.at(exponent), other.at(exponent)
        bins = np.concatenate((mine[0], theirs[0]))
        counts = np.concatenate((mine[1], theirs[1]))
        order = np.argsort(bins, kind="stable")
        return LinearGrid.fitted(exponent, *_runs(bins[order], counts[order]))

    def to_dict(self) -> dict[str, Any]:
        # The first bin, then the steps between occupied bins in units of their greatest
        # common divisor: integers sit 2**40 or so bins apart at the finest width, and one
        # apart in those units, which keeps the JSON short.
        if self.bins.size == 0:
            return {"exponent": self.exponent, "start": 0, "stride": 1, "steps": [], "counts": []}
        gaps = np.diff(self.bins)
        stride = int(np.gcd.reduce(gaps)) if gaps.size else 1
        return {
            "exponent": self.exponent,
            "start": int(self.bins[0]),
            "stride": stride,
            "steps": (gaps // stride).tolist(),
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_dict(cls, document: Any, where: str) -> LinearGrid:
        if not isinstance(document, Mapping):
            raise ValueError(
                f"{where}: expected an object with exponent, start, stride, steps, counts"
            )
        exponent = _integer(document, "exponent", where, minimum=_FINEST)
        if exponent > 1100:
            raise ValueError(f"{where}.exponent: must be at most 1100, got {exponent}")
        start = _integer(document, "start", where, minimum=-(2**53))
        stride = _integer(document, "stride", where, minimum=1)
        steps, counts = document.get("steps"), document.get("counts")
        if not isinstance(steps, list) or not all(
            isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in steps
        ):
            raise ValueError(f"{where}.steps: expected a list of positive integers")
        if not isinstance(counts, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in counts
        ):
            raise ValueError(f"{where}.counts: expected a list of positive integers")
        if len(counts) > LINEAR_BINS:
            raise ValueError(f"{where}.counts: at most {LINEAR_BINS} bins, got {len(counts)}")
        if len(steps) != max(len(counts) - 1, 0):
            raise ValueError(
                f"{where}.steps: one fewer than counts ({len(counts)}), got {len(steps)}"
            )
        bins = [start + stride * offset for offset in accumulate([0, *steps])][: len(counts)]
        if bins and bins[-1] > 2**53:
            raise ValueError(f"{where}.steps: bin numbers beyond 2**53")
        return cls(exponent, np.array(bins, dtype=np.int64), np.array(counts, dtype=np.int64))


def _bin(values: Floats, exponent: int) -> Ints:
    """floor(value / 2**exponent), exactly."""
    # ldexp is exact where the result is normal; where it underflows the floor is 0 or -1.
    bins = np.floor(np.ldexp(values, -exponent)).astype(np.int64)
    result: Ints = np.where(values < 0, np.minimum(bins, -1), bins)
    return result


def _spanning_exponent(low: float, high: float, finest: int) -> int:
    """The finest 2**k, no finer than 2**finest, at which [low, high] spans at most
    LINEAR_BINS bins."""
    half_span = high / 2 - low / 2  # halves: the difference itself may overflow
    k = finest
    if half_span > 0:
        # One below the estimate, in case log2 rounds up: the loop below only widens.
        k = max(k, math.ceil(math.log2(half_span / LINEAR_BINS)) - 1)
    # At k >= finest every bin number fits in an int64.
    while math.floor(math.ldexp(high, -k)) - math.floor(math.ldexp(low, -k)) + 1 > LINEAR_BINS:
        k += 1
    return k


def _runs(bins: Ints, counts: Counts) -> tuple[Ints, Counts]:
    """Ascending bins with repeats, and their counts: each bin once, with the counts summed."""
    if bins.size == 0:
        return bins, counts
    ends = np.append(np.flatnonzero(bins[1:] != bins[:-1]), bins.size - 1)
    totals = np.cumsum(counts)[ends]
    return bins[ends], np.diff(totals, prepend=0).astype(np.int64)


def _occupied(bins: Ints) -> int:
    return 1 + int(np.count_nonzero(bins[1:] != bins[:-1])) if bins.size else 0
