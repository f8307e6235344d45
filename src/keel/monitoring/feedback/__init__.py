"""Delayed ground truth: labels that arrive after the prediction, joined to the prediction
log, and the model's performance per window over the predictions that have one.

    table = read_feedback_file(Path("labels.csv"))     # CSV, Parquet or JSON lines
    result = ingest(project, table)                    # all or nothing
    performance(project, "flights-delay", start=t0, end=t1, window=timedelta(days=1))

Labels join predictions by the id keel returned with each one (`monitoring.feedback.join:
id`, the default), or by entity key and time (`join: entity`): the newest prediction of
the model whose inputs carry the row's `data.entity_key` values, made at most `max_lag`
before the time the label is about. Everything is checked before anything is written: a
missing column, a null or non-finite label, a malformed id, an id that names no logged
prediction, a row that matches nothing, two rows for one prediction. Each problem names the
field, the rule and the first rows; nothing is recorded then.

Performance uses the metric definitions of training (`keel.metrics`), on the
model's logged outputs: `probability` for score metrics (roc_auc, log_loss, ...),
`prediction` for the others. A shadow row takes the label of the request it shadowed.

`parsing` reads a file or JSON records into a table, `checks` holds each row to the rules,
`joining` finds the logged prediction each row is about, `ingest` records them all or none,
`performance` scores windows (`windows` cuts and reads them); `problems` is what they report.
Import from here.
"""

from keel.monitoring.feedback.checks import check_feedback
from keel.monitoring.feedback.ingest import FeedbackResult, ingest, receive
from keel.monitoring.feedback.joining import Resolution, default_model, resolve
from keel.monitoring.feedback.parsing import read_feedback_file, records_table
from keel.monitoring.feedback.performance import (
    MIN_LABELS,
    WindowPerformance,
    measure,
    monitored_metrics,
    performance,
    score_window,
)
from keel.monitoring.feedback.problems import FeedbackProblem
from keel.monitoring.feedback.windows import align

__all__ = [
    "MIN_LABELS",
    "FeedbackProblem",
    "FeedbackResult",
    "Resolution",
    "WindowPerformance",
    "align",
    "check_feedback",
    "default_model",
    "ingest",
    "measure",
    "monitored_metrics",
    "performance",
    "read_feedback_file",
    "receive",
    "records_table",
    "resolve",
    "score_window",
]
