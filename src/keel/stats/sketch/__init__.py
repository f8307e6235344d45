"""Mergeable column sketches: what a stream of batches looks like, in bounded memory.

    sketch = TableSketch.of(batch)            # one window, or one segment of the prediction log
    sketch.update(next_batch)                 # streaming: once per batch
    day = morning.merge(afternoon)            # the same as sketching both batches together
    stored = sketch.to_json()                 # a few KB per column, whatever the row count

Monitoring compares windows of production data with a reference, and the windows are built
from segments written at different times. Keeping the raw rows is too big, and exact profiles
(`keel.stats.profile`) cannot be merged; so each column keeps a summary that is small, can be
updated batch by batch, and merges exactly:

- numbers: a DDSketch-style histogram (Masson, Rim and Lee, VLDB 2019). A value x > 0 goes to
  bucket `ceil(log(x) / log(gamma))` with `gamma = (1 + a) / (1 - a)` and `a =
  RELATIVE_ACCURACY`; negatives go to a mirror set of buckets on |x|, zeros to a counter of
  their own. Each bucket stands for its values by `2 gamma^i / (gamma + 1)`, which is within a
  relative `a` of every value in it, so quantiles are within 0.5% of the true value. Buckets
  are fixed by the value alone, so two sketches add bucket for bucket: merging is exact, in any
  order. At most `MAX_BUCKETS` buckets are kept per sign: past that, the buckets of smallest
  magnitude are folded into the lowest kept one (values more than ~6e17 times smaller than
  the largest, whose accuracy is then lost). The fold depends only on the largest bucket, so
  merging stays exact even then. Count, mean and M2 (sum of squared deviations) are kept beside
  it and merged with Chan et al.'s pairwise update (exact up to float rounding);
- categories (strings, dictionaries) and booleans (`"true"`/`"false"`): exact counts per value
  up to `MAX_CATEGORIES` distinct values; beyond that the rarest are folded into `other`, and
  merges of folded sketches are approximate (a value rare in both halves may be folded out
  though it would have made the cut on the whole);
- timestamps and dates: the oldest and newest value (epoch seconds), and the null count.

Nulls, and NaN and infinities in float columns, count as missing: they add to `nulls`, not to
the distributions. A column a batch lacks (or holds as Arrow's all-null `null` type) counts
those rows as missing, and so does a column that first appears after some rows: every column's
`count` equals the table's `rows`. Columns of other types (lists, structs, binary) are left out.

Pure: numpy and pyarrow.

`arrow` reads Arrow columns, `numeric` is the number sketch, `column` a column's sketch of any
kind, `table` a table's, and `documents` checks stored sketches as they are read back.
"""

from keel.stats.sketch.arrow import (
    ColumnKind,
    column_kind,
    count_integers,
    finite_numbers,
    value_counts,
)
from keel.stats.sketch.column import MAX_CATEGORIES, ColumnSketch
from keel.stats.sketch.numeric import MAX_BUCKETS, RELATIVE_ACCURACY, NumericSketch
from keel.stats.sketch.table import SKETCH_KIND, SKETCH_VERSION, TableSketch

__all__ = [
    "MAX_BUCKETS",
    "MAX_CATEGORIES",
    "RELATIVE_ACCURACY",
    "SKETCH_KIND",
    "SKETCH_VERSION",
    "ColumnKind",
    "ColumnSketch",
    "NumericSketch",
    "TableSketch",
    "column_kind",
    "count_integers",
    "finite_numbers",
    "value_counts",
]
