"""The model's performance per window, over the predictions whose labels arrived."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.domain.metric import METRICS
from keel.errors import ConfigError, DependencyMissing
from keel.metadata.base import Label
from keel.monitoring.feedback.parsing import _kind
from keel.monitoring.feedback.windows import _read
from keel.serial import dump
from keel.spec import KNOWN_METRICS, MetricSpec

if TYPE_CHECKING:
    from keel.spec import ProjectSpec
    from keel.workspace import Workspace

__all__ = [
    "MIN_LABELS",
    "WindowPerformance",
    "measure",
    "monitored_metrics",
    "performance",
    "score_window",
]


#: Windows with fewer labelled predictions get no value: an AUC over a dozen rows swings
#: by tenths between two draws of the same model.
MIN_LABELS: Final = 30


#: Columns a window of predictions is read with for performance.
_SCORE_COLUMNS: Final = ("outputs.prediction", "outputs.probability")


@dataclass(frozen=True)
class WindowPerformance:
    """One model version's predictions in one window, how many have a label, and the metric
    over those; `value` is None, with the reason in `note`, when it cannot be told."""

    model: str
    start: datetime
    end: datetime
    version: int | None  # None: the window holds no prediction
    predictions: int
    labelled: int
    metric: str
    value: float | None
    note: str | None = None

    @property
    def coverage(self) -> float | None:
        """The share of the predictions that have a label."""
        return self.labelled / self.predictions if self.predictions else None

    def to_dict(self) -> dict[str, Any]:
        return dump(self, after={"labelled": {"coverage": self.coverage}})


def performance(
    project: Workspace,
    model: str,
    *,
    start: datetime,
    end: datetime,
    window: timedelta,
    metric: str | None = None,
    version: int | None = None,
    min_labels: int = MIN_LABELS,
) -> list[WindowPerformance]:
    """Per window of `window` from `start` to `end` (the last one may be shorter), per model
    version: predictions, labelled predictions and the metric over them. Windows are read
    one at a time, so memory holds one window whatever the range."""
    if window <= timedelta(0):
        raise ConfigError("window must be positive", problems=[("window", "must be positive")])
    name = _metric(project, metric)
    try:
        import sklearn  # noqa: F401  (only probing: the metrics are scikit-learn's)
    except ImportError:
        raise DependencyMissing("scikit-learn", "sklearn", "Scoring feedback") from None
    return [
        entry
        for window_start, window_end in _windows(start, end, window)
        for entry in score_window(
            project,
            model,
            _read(project, model, window_start, window_end, _columns(), version),
            window_start,
            window_end,
            metric=name,
            version=version,
            min_labels=min_labels,
        )
    ]


def _windows(
    start: datetime, end: datetime, window: timedelta
) -> Iterator[tuple[datetime, datetime]]:
    moment = start
    while moment < end:
        yield moment, min(moment + window, end)
        moment += window


def _columns() -> list[str]:
    return ["id", "at", "version", "slot", "shadow_of", *_SCORE_COLUMNS]


def _metric(project: Workspace, metric: str | None) -> str:
    name = metric or project.spec.monitoring.feedback.metric
    if name is None:
        primary = project.spec.primary_metric
        if primary is None:
            raise ConfigError(
                "no performance metric: keel.yaml lists no metrics",
                problems=[("monitoring.feedback.metric", "set it, or list metrics")],
            )
        name = primary.name
    if name not in KNOWN_METRICS:
        raise ConfigError(
            f"metric {name!r} has no built-in implementation to score feedback with",
            problems=[
                ("monitoring.feedback.metric", f"must be one of {', '.join(sorted(KNOWN_METRICS))}")
            ],
        )
    return name


def score_window(
    project: Workspace,
    model: str,
    predictions: pa.Table,
    start: datetime,
    end: datetime,
    *,
    metric: str,
    version: int | None = None,
    min_labels: int = MIN_LABELS,
) -> list[WindowPerformance]:
    """Performance per version over one window's predictions (`read_window`'s table, with
    `id`, `version`, `shadow_of` and the outputs), joined to the labels of `[start, end)`."""
    labelled = project.metadata.feedback.window(model, start, end)
    labels = [entry.label for entry in labelled]
    keys = pa.table(
        {
            "key": pa.array([entry.prediction_id for entry in labelled], pa.string()),
            "label_index": pa.array(range(len(labelled)), pa.int64()),
        }
    )
    if version is not None:
        predictions = predictions.filter(pc.equal(predictions["version"], version))
    if not predictions.num_rows:
        note = "no predictions" if version is None else f"no predictions of v{version}"
        return [WindowPerformance(model, start, end, version, 0, 0, metric, None, note)]
    # A shadow row takes the label of the request it shadowed.
    key = pc.coalesce(predictions["shadow_of"], predictions["id"])
    table = pa.table(
        {
            "key": key,
            "version": predictions["version"],
            **{
                name: _joinable(predictions[name])
                if name in predictions.column_names
                else pa.nulls(predictions.num_rows, pa.float64())
                for name in _SCORE_COLUMNS
            },
        }
    ).join(keys, "key", join_type="left outer")
    results = []
    for number in sorted(set(table["version"].to_pylist())):
        rows = table.filter(pc.equal(table["version"], number))
        results.append(_score(model, start, end, int(number), rows, labels, metric, min_labels))
    return results


def _joinable(column: Any) -> Any:
    """`column`, typed: Arrow's joins refuse a column of type null, which is what a
    regressor's never-written `outputs.probability` reads back as."""
    return column.cast(pa.float64()) if pa.types.is_null(column.type) else column


def _score(
    model: str,
    start: datetime,
    end: datetime,
    version: int,
    rows: pa.Table,
    labels: Sequence[Label],
    metric: str,
    min_labels: int,
) -> WindowPerformance:
    total = rows.num_rows
    rows = rows.filter(pc.is_valid(rows["label_index"]))
    count = rows.num_rows
    truth = [labels[i] for i in rows["label_index"].to_pylist()]
    scores = rows["outputs.probability"]
    logged = pa.types.is_floating(scores.type) and not scores.null_count
    value, note = measure(
        [metric],
        truth,
        predictions=rows["outputs.prediction"].to_pylist(),
        scores=scores.to_pylist() if logged else None,
        min_labels=min_labels,
        version=version,
    )[metric]
    return WindowPerformance(model, start, end, version, total, count, metric, value, note)


def monitored_metrics(spec: ProjectSpec) -> list[str]:
    """The metrics measured on labelled predictions, the headline first: the one
    `monitoring.feedback.metric` names, every metric of keel.yaml, and any a performance
    trigger or alert rule names (so no trigger waits on a metric nobody measures)."""
    names = [spec.monitoring.feedback.metric, *(m.name for m in spec.metrics)]
    trigger = spec.retraining.triggers.performance
    if trigger is not None:
        names.append(trigger.metric)
    for rule in spec.monitoring.alerts or []:
        if rule.signal == "performance" and rule.subject and rule.subject in METRICS:
            names.append(rule.subject)
    return list(dict.fromkeys(name for name in names if name))


def measure(
    metrics: Sequence[str],
    truth: Sequence[Label],
    *,
    predictions: Sequence[Any],
    scores: Sequence[float] | None,
    min_labels: int = MIN_LABELS,
    version: int | None = None,
) -> dict[str, tuple[float | None, str | None]]:
    """Each metric over labelled predictions: its value, or None and why it cannot be told
    (too few labels, labels of mixed kinds, one class only, no probability logged, ...).
    `scores` is the logged probability of the positive class, None when there is none."""
    import numpy as np

    from keel.metrics import evaluate

    count = len(truth)
    kinds = sorted({_kind(value) for value in truth})
    classes = len(set(truth))
    results: dict[str, tuple[float | None, str | None]] = {}
    for name in metrics:
        definition = METRICS.get(name)
        note: str | None = None
        if definition is None:
            note = (
                f"{name} has no built-in implementation to score labels with; "
                f"monitoring measures {', '.join(sorted(METRICS))}"
            )
        elif not count:
            note = "no labels yet"
        elif count < min_labels:
            note = f"{count} labelled; at least {min_labels} are needed"
        elif len(kinds) > 1:
            note = f"the labels mix {' and '.join(kinds)}"
        elif definition.needs == "score" and scores is None:
            who = "the model" if version is None else f"v{version}"
            note = f"{name} needs the probability output, which {who} did not log"
        elif definition.two_classes and classes < 2:
            note = f"{name} needs two classes; every label is {truth[0]!r}"
        if note is not None:
            results[name] = (None, note)
            continue
        try:
            values = evaluate(
                [MetricSpec(name=name)],
                np.asarray(list(truth)),
                y_pred=np.asarray(list(predictions)),
                y_score=None if scores is None else np.asarray(list(scores), dtype="float64"),
            )
        except ConfigError as exc:
            results[name] = (None, exc.message.removeprefix("metrics: "))
            continue
        value = values[name]
        results[name] = (value, None) if math.isfinite(value) else (None, f"{name} is {value}")
    return results
