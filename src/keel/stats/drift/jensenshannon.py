"""Jensen-Shannon distance: how distinguishable the two distributions' shares are.

Direction: a distance; drifted when `statistic >= 0.1` (the default threshold).
When: categorical and boolean columns with large samples (more than `SMALL_SAMPLE` values on
the smaller side, the default there); also numbers, binned. Symmetric, bounded (0 to
sqrt(ln 2) ~ 0.83 in the natural log used here) and finite when a category is new or gone,
and, unlike a p-value, it does not shrink as samples grow.

The statistic is `scipy.spatial.distance.jensenshannon(r, c)` with the default natural
logarithm, on the two samples' counts: for categories one bin per value seen in either sample,
for numbers the reference's deciles (`numeric_bins`, the same bins as PSI). No epsilon: an
empty bin contributes 0. Rounding can push the square root's argument a hair below zero for
identical shares, where scipy gives NaN; this gives 0.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from keel.stats.drift.base import BinnedTest, Counts

__all__ = ["JensenShannon", "jensenshannon"]


class JensenShannon(BinnedTest):
    name: ClassVar[str] = "jensenshannon"

    def distance(self, reference: Counts, current: Counts) -> float:
        return jensenshannon(reference, current)


def jensenshannon(reference: Counts, current: Counts) -> float:
    """scipy's jensenshannon(reference, current): the same float operations, natural log."""
    from scipy.special import rel_entr  # type: ignore[import-untyped,unused-ignore]

    p = reference / np.sum(reference)
    q = current / np.sum(current)
    m = (p + q) / 2.0
    js = float(np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m)))
    return math.sqrt(max(js, 0.0) / 2.0)
