"""Training-serving skew: are the features a model gets in production the ones it was trained on?

Both views run the model version's *packaged* feature code (never the project's working tree),
so they measure what serving computed, not what the code looks like today:

- distribution skew (`distribution_skew`): the features of the window's logged requests against
  the training features (the features step output of the version's run, training rows only),
  one drift test per feature through `keel.stats.drift.compare_tables`;
- row-level skew (`row_skew`): each logged request that carries the entity key
  (keel.yaml `data.entity_key`) is matched with the offline raw row of the same key, in the
  version's training dataset or in a later version of the source (`source`: production rows
  arrive after training); features are computed on both sides and compared value by value.
  A broken online feature pipeline (a unit converted, a field not filled) shows as the share of
  rows whose feature disagrees, on exactly the features it affects.

The offline side is computed like training computes it (the dataset's rows as a DataFrame, label
dropped); the online side like serving does (the logged inputs, typed by the inference contract,
as `keel.serving.codec.to_frame` builds them). Features are computed once per side, as one batch:
keel's feature code maps each raw row to one feature row on its own.

    report = row_skew(project, "flights-delay", start=start, end=end)
    for feature in report.features:
        print(feature.feature, feature.mismatch_rate)

`report` holds the three operations, `serving` reads a window and computes its features as
serving did, `rows` and `distribution` compare them with the offline side, `results` is what
they return. Import from here.
"""

from keel.monitoring.skew.report import distribution_skew, row_skew, skew_report
from keel.monitoring.skew.results import (
    EXAMPLES,
    FeatureSkew,
    RowSkewReport,
    SkewExample,
    SkewReport,
)
from keel.monitoring.skew.serving import request_frame

__all__ = [
    "EXAMPLES",
    "FeatureSkew",
    "RowSkewReport",
    "SkewExample",
    "SkewReport",
    "distribution_skew",
    "request_frame",
    "row_skew",
    "skew_report",
]
