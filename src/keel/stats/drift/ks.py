"""Two-sample Kolmogorov-Smirnov test: the largest gap between the two empirical CDFs.

Direction: a p-value; drifted when `p_value < 0.05` (the default threshold).
When: numeric columns with small samples (up to `SMALL_SAMPLE` values on the smaller side, the
default there). It reacts to any change of shape, location or spread; on large samples its
p-value flags differences too small to matter, which is why larger samples default to the
Wasserstein distance.

The statistic and p-value are those of `scipy.stats.ks_2samp(reference, current)` (two-sided,
`method="auto"`), computed without calling it on the data: the CDFs are evaluated once on the
merged distinct values. The p-value follows ks_2samp's own choice: exact (the distribution of
D for these sample sizes, reporting D rounded to a multiple of 1 / lcm(n1, n2) as scipy does)
when both samples hold at most 10,000 values, else `kstwo.sf(D, round(n1 n2 / (n1 + n2)))`;
and, as scipy, the asymptotic value when the exact computation fails. From sketches the same
statistic is taken on the buckets' representatives: both sketches share one bucket grid, so
D is the exact D at bucket resolution (equal, for values no two of which share a bucket).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Final

import numpy as np

from keel.stats.drift.base import Decision, Distribution, DriftTest, Measure, joint_cumulative

__all__ = ["EXACT_LIMIT", "KolmogorovSmirnov", "ks_p_value"]

#: scipy's MAX_AUTO_N: larger samples get the asymptotic p-value.
EXACT_LIMIT: Final = 10_000


class KolmogorovSmirnov(DriftTest):
    name: ClassVar[str] = "ks"
    decision: ClassVar[Decision] = "p_value"
    default_threshold: ClassVar[float] = 0.05
    kinds: ClassVar[frozenset[str]] = frozenset({"numeric"})

    def numeric(self, reference: Distribution, current: Distribution) -> Measure:
        n1, n2 = reference.total, current.total
        if n1 == 0 or n2 == 0:
            raise ValueError("ks needs at least one value in each sample")
        _, below_ref, below_cur = joint_cumulative(reference, current)
        # The same float operations as ks_2samp: count / n for each CDF, then the difference.
        differences = below_ref / n1 - below_cur / n2
        largest = float(differences.max())
        smallest = float(np.clip(-differences.min(), 0, 1))
        d = max(largest, smallest)
        if max(n1, n2) <= EXACT_LIMIT:
            d, p_value = _exact(reference, current, d)
        else:
            p_value = ks_p_value(d, n1, n2)
        return Measure(statistic=d, p_value=p_value)


def ks_p_value(d: float, n1: int, n2: int) -> float:
    """ks_2samp's asymptotic two-sided p-value for statistic `d` and sample sizes n1, n2."""
    # scipy is imported when first needed: importing keel.stats stays cheap.
    from scipy.stats import kstwo  # type: ignore[import-untyped,unused-ignore]

    m, n = sorted((float(n1), float(n2)), reverse=True)
    en = m * n / (m + n)
    return float(np.clip(kstwo.sf(d, np.round(en)), 0, 1))


def _exact(reference: Distribution, current: Distribution, d: float) -> tuple[float, float]:
    n1, n2 = reference.total, current.total
    try:
        # The function ks_2samp itself calls for exact p-values: the same numbers by
        # construction, and no warning when it fails (ks_2samp warns, then goes asymptotic).
        from scipy.stats._stats_py import (  # type: ignore[import-untyped,unused-ignore]
            _attempt_exact_2kssamp,
        )
    except ImportError:  # pragma: no cover - a scipy that moved it: ks_2samp on the samples
        from scipy.stats import ks_2samp  # type: ignore[import-untyped,unused-ignore]

        result: Any = ks_2samp(
            np.repeat(reference.values, reference.counts),
            np.repeat(current.values, current.counts),
        )
        return float(result.statistic), float(result.pvalue)
    success, rounded, p_value = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), d, "two-sided")
    if not success:
        return float(rounded), ks_p_value(float(rounded), n1, n2)
    return float(rounded), float(np.clip(p_value, 0, 1))
