"""Drift tests: has a column's distribution moved between a reference and now?

    from keel.stats.drift import compare_tables, compare_sketches, TESTS
    results = compare_tables(reference, current)          # the default test per column
    TESTS["psi"].exact(reference_values, current_values)  # one test, two samples

Five tests, one module each, each stating its direction and default threshold:

| test          | kinds                 | drifted when        | default for            |
| ------------- | --------------------- | ------------------- | ---------------------- |
| ks            | numeric               | p_value < 0.05      | numbers, <= 1000 rows  |
| wasserstein   | numeric               | score >= 0.1        | numbers, larger        |
| chi2          | categorical, boolean  | p_value < 0.05      | categories, <= 1000    |
| jensenshannon | all but temporal      | statistic >= 0.1    | categories, larger     |
| psi           | all but temporal      | statistic >= 0.1    | (on request)           |

Which test a column gets, or why it gets none (dates, types no test takes, no value on one
side), is `choose_test`'s decision, the same for every caller.

Statistics equal scipy's (ks_2samp, wasserstein_distance, chi2_contingency without Yates'
correction, spatial.distance.jensenshannon); tests hold them to it on random data.
"""

from keel.stats.drift.applicability import ColumnSide, Skipped, choose_test
from keel.stats.drift.base import (
    EMPTY_BIN,
    NUMERIC_BINS,
    Decision,
    Distribution,
    DriftResult,
    DriftTest,
    Measure,
)
from keel.stats.drift.chi2 import ChiSquare
from keel.stats.drift.compare import compare_sketches, compare_tables
from keel.stats.drift.jensenshannon import JensenShannon
from keel.stats.drift.ks import KolmogorovSmirnov
from keel.stats.drift.psi import PopulationStability
from keel.stats.drift.registry import SMALL_SAMPLE, TESTS, default_test
from keel.stats.drift.wasserstein import Wasserstein

__all__ = [
    "EMPTY_BIN",
    "NUMERIC_BINS",
    "SMALL_SAMPLE",
    "TESTS",
    "ChiSquare",
    "ColumnSide",
    "Decision",
    "Distribution",
    "DriftResult",
    "DriftTest",
    "JensenShannon",
    "KolmogorovSmirnov",
    "Measure",
    "PopulationStability",
    "Skipped",
    "Wasserstein",
    "choose_test",
    "compare_sketches",
    "compare_tables",
    "default_test",
]
