"""The drift tests by name, and which one a column gets when none is named.

Defaults follow Evidently's, with one change: the choice looks at the smaller of the two
samples (a p-value test's power is governed by it, through n1 n2 / (n1 + n2)), where Evidently
looks at the reference alone.

| kind                   | smaller sample <= 1000 | larger                       |
| ---------------------- | ---------------------- | ---------------------------- |
| numeric                | ks (p < 0.05)          | wasserstein (score >= 0.1)   |
| categorical, boolean   | chi2 (p < 0.05)        | jensenshannon (>= 0.1)       |

Hypothesis tests on small samples, where their p-values mean something; distances on large
ones, where any p-value is tiny. Numbers stay numbers even with few distinct values (a 0/1
flag stored as int): the Wasserstein score and KS are right for them too, and the kind then
depends on the column's type alone, not on the data of one window. Evidently's z-test for
two-valued categories is chi2 here: without Yates' correction the two agree exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from keel.stats.drift.base import DriftTest
from keel.stats.drift.chi2 import ChiSquare
from keel.stats.drift.jensenshannon import JensenShannon
from keel.stats.drift.ks import KolmogorovSmirnov
from keel.stats.drift.psi import PopulationStability
from keel.stats.drift.wasserstein import Wasserstein

__all__ = ["SMALL_SAMPLE", "TESTS", "default_test"]

#: Up to this many values on the smaller side, a sample is small: hypothesis tests.
SMALL_SAMPLE: Final = 1000

TESTS: Final[Mapping[str, DriftTest]] = MappingProxyType(
    {
        test.name: test
        for test in (
            KolmogorovSmirnov(),
            PopulationStability(),
            ChiSquare(),
            Wasserstein(),
            JensenShannon(),
        )
    }
)


def default_test(kind: str, reference_count: int, current_count: int) -> str:
    """The name of the test a column of `kind` gets for samples of these sizes."""
    small = min(reference_count, current_count) <= SMALL_SAMPLE
    if kind == "numeric":
        return "ks" if small else "wasserstein"
    if kind in ("categorical", "boolean"):
        return "chi2" if small else "jensenshannon"
    raise ValueError(f"no drift test for {kind} columns")
