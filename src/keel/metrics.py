"""Metrics on a holdout, computed the same way for every model (and for the champion it is
compared with): by scikit-learn's reference implementations, from labels and scores.

A shared service below training, release evidence, monitoring and retraining, which all
compute metrics here so that a metric means one thing everywhere."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np

from keel.domain.metric import METRICS
from keel.errors import ConfigError
from keel.spec import MetricSpec

__all__ = ["NEEDS_SCORES", "POSITIVE_CLASS_METRICS", "evaluate"]

#: Metrics computed from a score (probability of the positive class), not a hard label.
NEEDS_SCORES: Final = frozenset(name for name, m in METRICS.items() if m.needs == "score")


def _metric_functions() -> dict[str, Callable[[Any, Any], float]]:
    # Imported here: scikit-learn takes a second to import, and only training needs it.
    from sklearn import metrics as m

    def rmse(y: Any, p: Any) -> float:
        return math.sqrt(float(m.mean_squared_error(y, p)))

    return {
        "accuracy": m.accuracy_score,
        "balanced_accuracy": m.balanced_accuracy_score,
        "precision": lambda y, p: m.precision_score(y, p, zero_division=0),
        "recall": lambda y, p: m.recall_score(y, p, zero_division=0),
        "f1": lambda y, p: m.f1_score(y, p, zero_division=0),
        "roc_auc": m.roc_auc_score,
        "pr_auc": m.average_precision_score,
        "log_loss": lambda y, s: m.log_loss(y, s, labels=[0, 1]),
        "brier": m.brier_score_loss,
        "mae": m.mean_absolute_error,
        "mse": m.mean_squared_error,
        "rmse": rmse,
        "r2": m.r2_score,
        "mape": m.mean_absolute_percentage_error,
    }


#: Binary metrics that need to know which class is the positive one.
POSITIVE_CLASS_METRICS: Final = frozenset(
    {"precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier"}
)


def _positive_class(name: str, truth: Any, predicted: Any) -> tuple[Any, Any]:
    """Class labels as 0/1 for a binary metric. Numbers and booleans are the 0/1 they are;
    text labels (`late` / `on time`) make the later of the two in sorted order the positive
    class, 1: the class whose probability a classifier's `predict_proba` gives in its second
    column, since scikit-learn orders `classes_` so."""
    if truth.dtype.kind in "biuf" and predicted.dtype.kind in "biuf":
        return truth, predicted
    classes = sorted({str(v) for v in truth.tolist()} | {str(v) for v in predicted.tolist()})
    if len(classes) != 2:
        raise ConfigError(
            f"metrics: {name!r} needs exactly two classes, found {len(classes)} "
            f"({', '.join(classes[:5])}); use accuracy or balanced_accuracy"
        )
    positive = classes[1]
    code = np.vectorize(lambda value: int(str(value) == positive), otypes=[np.int64])
    return code(truth), code(predicted)


def evaluate(
    metrics: Sequence[MetricSpec],
    y_true: Any,
    *,
    y_pred: Any,
    y_score: Any | None = None,
) -> dict[str, float]:
    """Each metric's value on the holdout. `y_score` is the positive-class probability,
    required by the score metrics (roc_auc, pr_auc, log_loss, brier).

    A metric that cannot be computed (e.g. roc_auc on a holdout with one class) raises
    ConfigError naming it and why, rather than recording a misleading number.
    """
    functions = _metric_functions()
    truth = np.asarray(y_true)
    results: dict[str, float] = {}
    for metric in metrics:
        function = functions.get(metric.name)
        if function is None:
            raise ConfigError(
                f"metrics: {metric.name!r} has no built-in implementation; "
                "log it from your training code with ctx.log_metric"
            )
        labels = truth
        if metric.name in NEEDS_SCORES:
            if y_score is None:
                raise ConfigError(
                    f"metrics: {metric.name!r} needs scores, and the model has no "
                    "predict_proba; choose a label metric such as accuracy or f1"
                )
            inputs = np.asarray(y_score)
        else:
            inputs = np.asarray(y_pred)
        if metric.name in POSITIVE_CLASS_METRICS:
            labels, coded = _positive_class(metric.name, truth, np.asarray(y_pred))
            if metric.name not in NEEDS_SCORES:
                inputs = coded
        with warnings.catch_warnings(record=True) as caught:
            # scikit-learn warns and returns nan for undefined metrics (one class only).
            warnings.simplefilter("always")
            try:
                value = float(function(labels, inputs))
            except ValueError as exc:
                raise ConfigError(f"metrics: cannot compute {metric.name!r}: {exc}") from None
        undefined = [w for w in caught if "Undefined" in type(w.message).__name__]
        if undefined:
            reason = str(undefined[0].message)
            raise ConfigError(f"metrics: cannot compute {metric.name!r}: {reason}")
        if not math.isfinite(value):
            raise ConfigError(f"metrics: {metric.name!r} is {value} on this holdout")
        results[metric.name] = value
    return results
