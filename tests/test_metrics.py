"""Holdout metrics equal scikit-learn's reference values and refuse what they cannot compute."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as m

from keel.errors import ConfigError
from keel.metrics import evaluate
from keel.spec import MetricSpec

rng = np.random.default_rng(0)
Y = rng.integers(0, 2, 500)
SCORES = np.clip(Y * 0.3 + rng.random(500) * 0.7, 0, 1)
PRED = (SCORES > 0.5).astype(int)


def _specs(*names: str) -> list[MetricSpec]:
    return [MetricSpec(name=name) for name in names]


def test_classification_metrics_match_sklearn() -> None:
    values = evaluate(
        _specs("roc_auc", "log_loss", "accuracy", "f1", "brier"), Y, y_pred=PRED, y_score=SCORES
    )
    assert values["roc_auc"] == pytest.approx(m.roc_auc_score(Y, SCORES))
    assert values["log_loss"] == pytest.approx(m.log_loss(Y, SCORES))
    assert values["accuracy"] == pytest.approx(m.accuracy_score(Y, PRED))
    assert values["f1"] == pytest.approx(m.f1_score(Y, PRED))
    assert values["brier"] == pytest.approx(m.brier_score_loss(Y, SCORES))


def test_regression_metrics_match_sklearn() -> None:
    y = rng.normal(size=200)
    p = y + rng.normal(scale=0.1, size=200)
    values = evaluate(_specs("mae", "rmse", "r2"), y, y_pred=p)
    assert values["rmse"] == pytest.approx(np.sqrt(m.mean_squared_error(y, p)))
    assert values["r2"] == pytest.approx(m.r2_score(y, p))


def test_score_metric_without_scores_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs scores"):
        evaluate(_specs("roc_auc"), Y, y_pred=PRED)


def test_one_class_holdout_cannot_give_auc() -> None:
    with pytest.raises(ConfigError, match="cannot compute 'roc_auc'"):
        evaluate(_specs("roc_auc"), np.ones(10), y_pred=np.ones(10), y_score=np.full(10, 0.9))


def test_custom_metric_is_logged_by_user_code() -> None:
    with pytest.raises(ConfigError, match=r"ctx\.log_metric"):
        evaluate([MetricSpec(name="late_share", greater_is_better=False)], Y, y_pred=PRED)


def test_text_classes_score_every_binary_metric_with_the_later_class_positive() -> None:
    # A classifier of "late" / "on time": predict_proba's second column is the probability
    # of "on time" (scikit-learn sorts classes_), so that class is the positive one.
    names = np.array(["late", "on time"])
    truth, predicted = names[Y], names[PRED]
    every = ("precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier", "accuracy")
    values = evaluate(_specs(*every), truth, y_pred=predicted, y_score=SCORES)
    assert values["f1"] == pytest.approx(m.f1_score(truth, predicted, pos_label="on time"))
    assert values["precision"] == pytest.approx(
        m.precision_score(truth, predicted, pos_label="on time")
    )
    assert values["recall"] == pytest.approx(m.recall_score(truth, predicted, pos_label="on time"))
    assert values["roc_auc"] == pytest.approx(m.roc_auc_score(Y, SCORES))
    assert values["pr_auc"] == pytest.approx(m.average_precision_score(Y, SCORES))
    assert values["log_loss"] == pytest.approx(m.log_loss(Y, SCORES))
    assert values["brier"] == pytest.approx(m.brier_score_loss(Y, SCORES))
    assert values["accuracy"] == pytest.approx(m.accuracy_score(truth, predicted))


def test_a_binary_metric_of_three_text_classes_says_so() -> None:
    truth = np.array(["a", "b", "c", "a"])
    with pytest.raises(ConfigError, match="'f1' needs exactly two classes, found 3"):
        evaluate(_specs("f1"), truth, y_pred=truth)
    # Accuracy needs no positive class.
    assert evaluate(_specs("accuracy"), truth, y_pred=truth) == {"accuracy": 1.0}
