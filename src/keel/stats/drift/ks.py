"""Two-sample Kolmogorov-Smirnov test: the largest gap between the two empirical CDFs.

Direction: a p-value; drifted when `p_value < 0.05` (the default threshold).
When: numeric columns with small samples (up to `SMALL_SAMPLE` values on the smaller side, the
default there). It reacts to any change of shape, location or spread; on large samples its
p-value flags differences too small to matter, which is why larger samples default to the
Wasserstein distance.

The statistic and p-value are those of `scipy.stats.ks_2samp(reference, current)` (two-sided,
`method="auto"`). The p-value follows ks_2samp's own choice: exact (the distribution of D for
these sample sizes, reporting D rounded to a multiple of 1 / lcm(n1, n2) as scipy does) when
both samples hold at most 10,000 values, and there keel calls ks_2samp itself on the samples
(scipy's exact distribution has no other public entry point); else
`kstwo.sf(D, round(n1 n2 / (n1 + n2)))`, with D computed without rebuilding the samples: the
CDFs are evaluated once on the merged distinct values. As scipy, the asymptotic value stands
in where the exact computation fails. From sketches the same
statistic is taken on the buckets' representatives: both sketches are read on one grid
(`paired_supports`), so D is the exact D at bucket resolution (equal, for values no two of
which share a bucket; off by at most the largest share of values one bucket holds).
"""

from __future__ import annotations

import warnings
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
        if max(n1, n2) <= EXACT_LIMIT:
            d, p_value = _exact(reference, current)
            return Measure(statistic=d, p_value=p_value)
        _, below_ref, below_cur = joint_cumulative(reference, current)
        # The same float operations as ks_2samp: count / n for each CDF, then the difference.
        differences = below_ref / n1 - below_cur / n2
        largest = float(differences.max())
        smallest = float(np.clip(-differences.min(), 0, 1))
        d = max(largest, smallest)
        return Measure(statistic=d, p_value=ks_p_value(d, n1, n2))


def ks_p_value(d: float, n1: int, n2: int) -> float:
    """ks_2samp's asymptotic two-sided p-value for statistic `d` and sample sizes n1, n2."""
    # scipy is imported when first needed: importing keel.stats stays cheap.
    from scipy.stats import kstwo  # type: ignore[import-untyped,unused-ignore]

    m, n = sorted((float(n1), float(n2)), reverse=True)
    en = m * n / (m + n)
    return float(np.clip(kstwo.sf(d, np.round(en)), 0, 1))


def _exact(reference: Distribution, current: Distribution) -> tuple[float, float]:
    """ks_2samp's own statistic and p-value on the samples the distributions stand for.

    scipy offers the exact distribution of the two-sample D only through ks_2samp (its
    helper is private), and the p-value depends only on the sizes and D, so the samples
    rebuilt from the distinct values and their counts give ks_2samp's answer: D rounded to
    a multiple of 1 / lcm(n1, n2) and the exact p-value, or the asymptotic one where the
    exact computation fails. Rebuilding costs little: both sides hold at most EXACT_LIMIT
    values here.
    """
    # scipy is imported when first needed: importing keel.stats stays cheap.
    from scipy.stats import ks_2samp  # type: ignore[import-untyped,unused-ignore]

    with warnings.catch_warnings():
        # Where the exact computation fails ks_2samp warns, then answers asymptotically:
        # that answer is the one keel reports, and the warning would only alarm users.
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful")
        result: Any = ks_2samp(
            np.repeat(reference.values, reference.counts),
            np.repeat(current.values, current.counts),
        )
    return float(result.statistic), float(np.clip(result.pvalue, 0, 1))
