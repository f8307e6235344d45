"""Population stability index: how the shares of the reference's bins have moved.

Direction: a distance; drifted when `statistic >= 0.1` (the default threshold; the usual
reading is below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a major one).
When: a scale-free score for numbers or categories that risk teams already read; it does not
depend on sample size. Not a default: for numbers the Wasserstein score says the same in the
column's units, for categories Jensen-Shannon is bounded and symmetric in a way PSI is not.

PSI = sum over bins of (c - r) ln(c / r), where r and c are the reference's and current's
shares of each bin. Numbers are binned on the reference's deciles (`numeric_bins`: up to 10
bins, closed on the right, open at both ends); categories one bin per value seen in either
sample. A bin empty on one side gets the share `EMPTY_BIN` (1e-4) instead of 0 before the
logarithm, as Evidently does, so that PSI stays finite; shares are not renormalised after.
From sketches the deciles and bin counts are taken on the buckets' representatives.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from keel.stats.drift.base import EMPTY_BIN, BinnedTest, Counts

__all__ = ["PopulationStability", "psi"]


class PopulationStability(BinnedTest):
    name: ClassVar[str] = "psi"

    def distance(self, reference: Counts, current: Counts) -> float:
        return psi(reference, current)


def psi(reference: Counts, current: Counts) -> float:
    """PSI of two aligned count vectors, empty bins at share EMPTY_BIN."""
    r = reference / reference.sum()
    c = current / current.sum()
    r[r == 0] = EMPTY_BIN
    c[c == 0] = EMPTY_BIN
    return float(np.sum((c - r) * np.log(c / r)))
