"""Wasserstein distance (earth mover's distance): how far, in the column's own units, the
reference's mass has to move to become the current distribution.

Direction: a distance; drifted when `score >= 0.1` (the default threshold), where the score is
the distance divided by the reference's standard deviation (population, floored at 0.001 so
that a constant reference still gives a finite score), Evidently's "normed" Wasserstein.
When: numeric columns with large samples (more than `SMALL_SAMPLE` values on the smaller
side, the default there). Unlike a p-value it does not shrink as samples grow: a shift of a
tenth of a standard deviation reads 0.1 on a thousand rows or a billion.

The statistic is `scipy.stats.wasserstein_distance(reference, current)`: the integral of
|F_ref - F_cur| over the merged distinct values (one sorted merge, no call to scipy). From
sketches it is the same integral over the buckets' representatives, which equals
`wasserstein_distance(values, values, u_weights=counts, v_weights=counts)` on the sketches'
supports (one grid for both, `paired_supports`). On the log grid every value moves by at most
RELATIVE_ACCURACY of itself, so the distance differs from the exact one by at most 0.005
(E|x_ref| + E|x_cur|); on the linear grid of width w, by at most w.
"""

from __future__ import annotations

from typing import ClassVar, Final

import numpy as np

from keel.stats.drift.base import Decision, Distribution, DriftTest, Measure, joint_cumulative

__all__ = ["MIN_SCALE", "Wasserstein"]

#: Smallest reference standard deviation the score divides by (as Evidently).
MIN_SCALE: Final = 0.001


class Wasserstein(DriftTest):
    name: ClassVar[str] = "wasserstein"
    decision: ClassVar[Decision] = "score"
    default_threshold: ClassVar[float] = 0.1
    kinds: ClassVar[frozenset[str]] = frozenset({"numeric"})

    def numeric(self, reference: Distribution, current: Distribution) -> Measure:
        n1, n2 = reference.total, current.total
        if n1 == 0 or n2 == 0:
            raise ValueError("wasserstein needs at least one value in each sample")
        grid, below_ref, below_cur = joint_cumulative(reference, current)
        gaps = np.diff(grid)
        heights = np.abs(below_ref[:-1] / n1 - below_cur[:-1] / n2)
        distance = float(np.dot(heights, gaps))
        return Measure(statistic=distance, score=distance / max(reference.std(), MIN_SCALE))
