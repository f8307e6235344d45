"""Mergeable column sketches: what a stream of batches looks like, in bounded memory.

    sketch = TableSketch.of(batch)            # one window, or one segment of the prediction log
    sketch.update(next_batch)                 # streaming: once per batch
    day = morning.merge(afternoon)            # the same as sketching both batches together
    stored = sketch.to_json()                 # a few KB per column, whatever the row count

Monitoring compares windows of production data with a reference, and the windows are built
from segments written at different times. Keeping the raw rows is too big, and exact profiles
(`keel.stats.profile`) cannot be merged; so each column keeps a summary that is small, can be
updated batch by batch, and merges exactly:

- numbers: two histograms of the same values, each exactly mergeable, because no one grid
  suits every column. The log grid is DDSketch-style (Masson, Rim and Lee, VLDB 2019): a value
  x > 0 goes to bucket `ceil(log(x) / log(gamma))` with `gamma = (1 + a) / (1 - a)` and `a =
  RELATIVE_ACCURACY`; negatives go to a mirror set of buckets on |x|, zeros to a counter of
  their own. Each bucket stands for its values by `2 gamma^i / (gamma + 1)`, within a relative
  `a` of every value in it, so quantiles are within 0.5% of the true value: right for long
  tails, coarse for values far from zero relative to their spread (air pressure, ~1013 +- 7
  hPa, fills seven buckets ~10 hPa wide). At most `MAX_BUCKETS` buckets are kept per sign:
  past that, the buckets of smallest magnitude are folded into the lowest kept one (values
  more than ~6e17 times smaller than the largest), a fold that depends only on the largest
  bucket. The linear grid (`linear.LinearGrid`) counts values in bins of one width, the
  finest power of two at which at most `LINEAR_BINS` bins are occupied: its width follows
  where the values are (pressure, read to 0.1 hPa: a bin per reading), right for offset
  columns, coarse for long tails.
  Both grids grow only with the values seen, so a merge is bucket for bucket and bin for bin
  the sketch of the concatenation, in any order. Drift tests compare two sketches on the grid
  that moves their values less (`paired_supports`): the linear grid's width w moves a value by
  at most w / 2, the log grid by at most 0.5% of itself. So KS's D is off by at most the
  largest share of values one bucket or bin holds, on either side, and the Wasserstein
  distance by at most the sum of both sides' moves: w on the linear grid, 0.005 (E|x_ref| +
  E|x_cur|) on the log grid. Count, mean and M2 (sum of squared deviations) are kept beside
  them and merged with Chan et al.'s pairwise update (exact up to float rounding);
- categories (strings, dictionaries) and booleans (`"true"`/`"false"`): exact counts per value
  up to `MAX_CATEGORIES` distinct values; beyond that the rarest are folded into `other`, each
  counted in one of `TAIL_BUCKETS` buckets by a hash of the value (`tail_bucket`: CRC-32 of
  its UTF-8 bytes). Which values stay listed can depend on the order of merges (a value rare
  in both halves may be folded out though it would have made the cut on the whole), but how
  many values hash to each bucket is exact, whatever the order; drift among rare values is
  then seen, understated where values share a bucket (on flights' 4,043 tail numbers the
  Jensen-Shannon distance reads 0.21 against 0.24 exact);
- timestamps and dates: the oldest and newest value (epoch seconds), and the null count.

Nulls, and NaN and infinities in float columns, count as missing: they add to `nulls`, not to
the distributions. A column a batch lacks (or holds as Arrow's all-null `null` type) counts
those rows as missing, and so does a column that first appears after some rows: every column's
`count` equals the table's `rows`. Columns of other types (lists, structs, binary) are left out.

Pure: numpy and pyarrow.

`arrow` reads Arrow columns, `numeric` is the number sketch and `linear` its linear grid,
`column` a column's sketch of any kind, `table` a table's, and `documents` checks stored
sketches as they are read back. Stored sketches carry a version (`SKETCH_VERSION`, 2):
version 1 documents, without linear grids or tail buckets, still read and compare as they
always did (log grid, one `other`).
"""

from keel.stats.sketch.arrow import (
    ColumnKind,
    column_kind,
    count_integers,
    finite_numbers,
    value_counts,
)
from keel.stats.sketch.column import MAX_CATEGORIES, TAIL_BUCKETS, ColumnSketch, tail_bucket
from keel.stats.sketch.linear import LINEAR_BINS
from keel.stats.sketch.numeric import (
    MAX_BUCKETS,
    RELATIVE_ACCURACY,
    NumericSketch,
    paired_supports,
)
from keel.stats.sketch.table import SKETCH_KIND, SKETCH_VERSION, TableSketch

__all__ = [
    "LINEAR_BINS",
    "MAX_BUCKETS",
    "MAX_CATEGORIES",
    "RELATIVE_ACCURACY",
    "SKETCH_KIND",
    "SKETCH_VERSION",
    "TAIL_BUCKETS",
    "ColumnKind",
    "ColumnSketch",
    "NumericSketch",
    "TableSketch",
    "column_kind",
    "count_integers",
    "finite_numbers",
    "paired_supports",
    "tail_bucket",
    "value_counts",
]
