"""Every monitored metric gets a value, or the reason it has none, in words a user can act on."""

from __future__ import annotations

from typing import Any

import pytest
from sklearn.metrics import mean_squared_error, r2_score

from keel.monitoring.feedback import measure, monitored_metrics
from keel.spec import parse_spec

TRUTH = [3.0, 5.0, 2.5, 7.0] * 10
PREDICTED = [2.5, 5.0, 3.0, 8.0] * 10


def test_regression_metrics_are_all_measured() -> None:
    found = measure(["rmse", "mae", "r2"], TRUTH, predictions=PREDICTED, scores=None, min_labels=1)
    assert found["rmse"] == (pytest.approx(mean_squared_error(TRUTH, PREDICTED) ** 0.5), None)
    assert found["r2"] == (pytest.approx(r2_score(TRUTH, PREDICTED)), None)
    assert found["mae"][0] is not None


@pytest.mark.parametrize(
    ("metric", "truth", "scores", "min_labels", "why"),
    [
        ("roc_auc", [1] * 40, [0.7] * 40, 1, "roc_auc needs two classes; every label is 1"),
        ("accuracy", [1, "yes"] * 20, None, 1, "the labels mix number and text"),
        ("rmse", [1.0] * 10, None, 30, "10 labelled; at least 30 are needed"),
        ("log_loss", [0, 1] * 20, None, 1, "log_loss needs the probability output"),
        ("accuracy", [], None, 1, "no labels yet"),
        ("revenue", [1.0] * 40, None, 1, "revenue has no built-in implementation"),
    ],
)
def test_a_metric_without_a_value_says_why(
    metric: str, truth: list[Any], scores: list[float] | None, min_labels: int, why: str
) -> None:
    predictions = [1] * len(truth)
    [(value, note)] = measure(
        [metric], truth, predictions=predictions, scores=scores, min_labels=min_labels
    ).values()
    assert value is None and note is not None and note.startswith(why), note


def test_monitoring_measures_every_metric_a_trigger_or_rule_names() -> None:
    spec = parse_spec(
        "name: m\nmetrics: [rmse, mae]\n"
        "monitoring: {feedback: {metric: r2}, alerts: [{name: p, signal: performance, "
        "subject: mape, threshold: 0.2}]}\n"
        "retraining: {triggers: {performance: {metric: mse, above: 9}}}\n"
    )
    assert monitored_metrics(spec) == ["r2", "rmse", "mae", "mse", "mape"]
