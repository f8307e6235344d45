"""Statistics of data: profiles of tables (and later drift and quality tests).

    from keel.stats import profile_table
    profile = profile_table(table)

Pure: imports pyarrow and nothing that stores, serves or prints.
"""

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

__all__ = [
    "HISTOGRAM_BINS",
    "PROFILE_KIND",
    "PROFILE_VERSION",
    "QUANTILES",
    "TOP_K",
    "BooleanSummary",
    "CategoricalSummary",
    "ColumnKind",
    "ColumnProfile",
    "Histogram",
    "NumericSummary",
    "Profile",
    "TemporalSummary",
    "profile_table",
]
