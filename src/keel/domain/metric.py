"""The metrics keel knows, and the one definition of a metric's direction.

Every place that compares two values of a metric (release gates, the retraining decision,
canary analysis, alert rules, retraining triggers, charts) asks this module which way is
better, so none reads a flag of its own:

    improvement(challenger, champion, higher_is_better=False)   # rmse: 2.51 vs 2.87 -> +0.36
    breaches(0.61, 0.65, higher_is_better=True)                  # roc_auc below 0.65: True

A metric of the user's own (`metrics: [{name: revenue, greater_is_better: true}]`) carries
its direction in keel.yaml; `direction_of` resolves a name against the declared metrics
first, then the known ones. Pure: no storage, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, Protocol

__all__ = [
    "KNOWN_METRICS",
    "METRICS",
    "DeclaredMetric",
    "Metric",
    "breaches",
    "direction_of",
    "direction_words",
    "improvement",
    "is_better",
    "worse_side",
]

Side = Literal["above", "below"]


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric keel computes itself: which way is better, what it is computed from (the
    hard prediction, or the positive class's probability), the task it belongs to, and
    the range of its values (None: unbounded on that side)."""

    name: str
    higher_is_better: bool
    needs: Literal["prediction", "score"]
    task: Literal["classification", "regression"]
    low: float | None
    high: float | None
    #: Undefined unless the labels hold both classes (an AUC over one class).
    two_classes: bool = False

    @property
    def direction(self) -> str:
        return direction_words(self.higher_is_better)


def _m(
    name: str,
    higher: bool,
    needs: Literal["prediction", "score"],
    task: Literal["classification", "regression"],
    low: float | None,
    high: float | None,
    *,
    two_classes: bool = False,
) -> tuple[str, Metric]:
    return name, Metric(name, higher, needs, task, low, high, two_classes)


#: Every metric keel computes, by name.
METRICS: Final[dict[str, Metric]] = dict(
    [
        _m("accuracy", True, "prediction", "classification", 0.0, 1.0),
        _m("balanced_accuracy", True, "prediction", "classification", 0.0, 1.0),
        _m("precision", True, "prediction", "classification", 0.0, 1.0),
        _m("recall", True, "prediction", "classification", 0.0, 1.0),
        _m("f1", True, "prediction", "classification", 0.0, 1.0),
        _m("roc_auc", True, "score", "classification", 0.0, 1.0, two_classes=True),
        _m("pr_auc", True, "score", "classification", 0.0, 1.0, two_classes=True),
        _m("log_loss", False, "score", "classification", 0.0, None),
        _m("brier", False, "score", "classification", 0.0, 1.0),
        _m("mae", False, "prediction", "regression", 0.0, None),
        _m("mse", False, "prediction", "regression", 0.0, None),
        _m("rmse", False, "prediction", "regression", 0.0, None),
        _m("r2", True, "prediction", "regression", None, 1.0),
        _m("mape", False, "prediction", "regression", 0.0, None),
    ]
)

#: Metric name -> whether a higher value is better (the known metrics only).
KNOWN_METRICS: Final[dict[str, bool]] = {name: m.higher_is_better for name, m in METRICS.items()}


class DeclaredMetric(Protocol):
    """A metric as keel.yaml lists it (`keel.spec.MetricSpec`)."""

    @property
    def name(self) -> str: ...

    @property
    def greater_is_better(self) -> bool | None: ...


def direction_of(name: str, declared: Iterable[DeclaredMetric] = ()) -> bool | None:
    """Whether a higher `name` is better: as keel.yaml declares it, else as keel knows it;
    None for a metric neither declares a direction for."""
    for metric in declared:
        if metric.name == name and metric.greater_is_better is not None:
            return metric.greater_is_better
    return KNOWN_METRICS.get(name)


def direction_words(higher_is_better: bool) -> str:
    return "higher is better" if higher_is_better else "lower is better"


def worse_side(higher_is_better: bool) -> Side:
    """Where a worse value lies relative to a threshold."""
    return "below" if higher_is_better else "above"


def improvement(challenger: float, champion: float, *, higher_is_better: bool) -> float:
    """How much better `challenger` is than `champion`: positive when it is better, in the
    metric's own units, whichever way the metric points."""
    gain = challenger - champion
    return gain if higher_is_better else -gain


def is_better(a: float, b: float, *, higher_is_better: bool) -> bool:
    """Whether `a` is strictly better than `b`."""
    return improvement(a, b, higher_is_better=higher_is_better) > 0


def breaches(value: float | None, threshold: float, *, higher_is_better: bool) -> bool:
    """Whether `value` is worse than `threshold` (an unknown or non-finite value is not)."""
    if value is None or not math.isfinite(value):
        return False
    return value < threshold if higher_is_better else value > threshold
