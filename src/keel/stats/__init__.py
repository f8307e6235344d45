"""Statistics of data: exact profiles of tables, mergeable sketches, and drift tests.

    from keel.stats import TableSketch, compare_tables, profile_table
    profile = profile_table(table)                      # exact, one table
    sketch = TableSketch.of(batch)                      # bounded, mergeable, streaming
    results = compare_tables(reference, current)        # drift, column by column

Pure: imports numpy, pyarrow and scipy, and nothing that stores, serves or prints.
(`keel.stats.sketch.ColumnKind`, the sketch's kinds, is not re-exported: `ColumnKind` here
is the profile's.)
"""

from keel.stats.drift import (
    TESTS,
    Decision,
    DriftResult,
    DriftTest,
    compare_sketches,
    compare_tables,
    default_test,
)
from keel.stats.profile import (
    HISTOGRAM_BINS,
    PROFILE_KIND,
    PROFILE_VERSION,
    QUANTILES,
    TOP_K,
    BooleanSummary,
    CategoricalSummary,
    ColumnKind,
    ColumnProfile,
    Histogram,
    NumericSummary,
    Profile,
    TemporalSummary,
    profile_table,
)
from keel.stats.sketch import (
    MAX_BUCKETS,
    MAX_CATEGORIES,
    RELATIVE_ACCURACY,
    SKETCH_KIND,
    SKETCH_VERSION,
    ColumnSketch,
    NumericSketch,
    TableSketch,
)

__all__ = [
    "HISTOGRAM_BINS",
    "MAX_BUCKETS",
    "MAX_CATEGORIES",
    "PROFILE_KIND",
    "PROFILE_VERSION",
    "QUANTILES",
    "RELATIVE_ACCURACY",
    "SKETCH_KIND",
    "SKETCH_VERSION",
    "TESTS",
    "TOP_K",
    "BooleanSummary",
    "CategoricalSummary",
    "ColumnKind",
    "ColumnProfile",
    "ColumnSketch",
    "Decision",
    "DriftResult",
    "DriftTest",
    "Histogram",
    "NumericSketch",
    "NumericSummary",
    "Profile",
    "TableSketch",
    "TemporalSummary",
    "compare_sketches",
    "compare_tables",
    "default_test",
    "profile_table",
]
