"""Pearson's chi-squared test of homogeneity: do both samples share the categories' shares?

Direction: a p-value; drifted when `p_value < 0.05` (the default threshold).
When: categorical and boolean columns with small samples (up to `SMALL_SAMPLE` values on the
smaller side, the default there). On large samples its p-value flags differences too small to
matter, which is why larger samples default to Jensen-Shannon.

The statistic and p-value are those of `scipy.stats.chi2_contingency(table, correction=False)`
on the 2 x K table of counts (reference and current, one column per category seen in either):
expected counts from the margins, K - 1 degrees of freedom, p = chi2.sf(statistic, K - 1); one
category gives 0 and p = 1, as scipy. Why a contingency table rather than `chisquare(current,
expected=reference shares)` (Evidently's choice): both samples are samples, and the goodness-
of-fit form treats the reference's shares as known truth, overstating significance, and breaks
on a category the reference never saw (expected 0). Why no Yates correction: scipy applies it
only for K = 2, which would make booleans answer a differently scaled statistic than every
other column; on two categories this test is then exactly the two-proportion z-test (z^2).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from keel.stats.drift.base import Counts, Decision, DriftTest, Measure

__all__ = ["ChiSquare"]


class ChiSquare(DriftTest):
    name: ClassVar[str] = "chi2"
    decision: ClassVar[Decision] = "p_value"
    default_threshold: ClassVar[float] = 0.05
    kinds: ClassVar[frozenset[str]] = frozenset({"categorical", "boolean"})

    def categorical(self, reference: Counts, current: Counts) -> Measure:
        observed = np.array([reference, current], dtype=np.float64)
        degrees = observed.shape[1] - 1
        if degrees == 0:
            return Measure(statistic=0.0, p_value=1.0)
        # scipy's expected_freq and power_divergence: the same operations, in the same order.
        expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True)
        expected = expected / observed.sum()
        statistic = float(((observed - expected) ** 2 / expected).sum())
        # chi2.sf, as scipy computes it; imported when first needed.
        from scipy.special import chdtrc  # type: ignore[import-untyped,unused-ignore]

        return Measure(statistic=statistic, p_value=float(chdtrc(degrees, statistic)))
