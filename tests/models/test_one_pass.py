"""One estimator pass for classifiers: when a classifier predicts the most probable class by
construction, and its predictions on real rows agree, serving derives the prediction from
`predict_proba` instead of calling the estimator twice; every other model keeps two calls,
and the answers are the same either way."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from keel.artifacts.hashing import hash_bytes
from keel.models.package import ONE_PASS_AFTER_ROWS, LoadedModel


def _data(classes: list[Any]) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    score = frame["a"] + 0.5 * frame["b"] + rng.normal(scale=0.5, size=400)
    bins = np.digitize(score, np.quantile(score, np.linspace(0, 1, len(classes) + 1)[1:-1]))
    return frame, np.asarray(classes)[bins]


def _loaded(estimator: Any, predict: Any = None) -> LoadedModel:
    return LoadedModel(
        digest=hash_bytes(b"model"),
        flavor="sklearn",
        estimator=estimator,
        contract=None,
        metadata={},
        feature_entry_point=None,
        _features=None,
        _predict=predict or estimator.predict,
        _predict_proba=estimator.predict_proba,
    )


@pytest.mark.parametrize(
    ("estimator", "classes"),
    [
        (HistGradientBoostingClassifier(max_iter=20, random_state=0), [0, 1]),
        (RandomForestClassifier(n_estimators=10, random_state=0), ["late", "on time", "early"]),
        (make_pipeline(StandardScaler(), LogisticRegression()), [False, True]),
    ],
    ids=["hist-gradient-boosting", "random-forest-3-classes", "pipeline-logistic"],
)
def test_a_classifier_predicting_the_most_probable_class_runs_once(
    estimator: Any, classes: list[Any]
) -> None:
    frame, labels = _data(classes)
    estimator.fit(frame, labels)
    model = _loaded(estimator)
    two_pass = model.score(frame)
    assert model.check_one_pass(frame.head(50)) and model.one_pass
    one_pass = model.score(frame)
    # The same predictions (values and type) and the same probabilities as two calls.
    assert list(one_pass[0]) == list(two_pass[0])
    assert np.asarray(one_pass[0]).dtype == np.asarray(two_pass[0]).dtype
    assert np.array_equal(one_pass[1], two_pass[1])


def test_a_classifier_not_known_to_predict_the_most_probable_class_keeps_two_calls() -> None:
    # Only estimators whose predict is defined as the most probable class are trusted; a
    # nearest-neighbours vote breaks ties its own way.
    frame, labels = _data([0, 1])
    neighbours = KNeighborsClassifier(n_neighbors=4).fit(frame, labels)
    model = _loaded(neighbours)
    assert not model.check_one_pass(frame)
    assert list(model.score(frame)[0]) == list(neighbours.predict(frame))


def test_predictions_that_disagree_on_the_warm_up_rows_keep_two_calls() -> None:
    # A known estimator behind a predict with its own threshold (as a wrapper might have).
    frame, labels = _data([0, 1])
    boosting = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(frame, labels)

    def cautious(features: Any) -> Any:
        return (boosting.predict_proba(features)[:, 1] > 0.2).astype(int)

    model = _loaded(boosting, predict=cautious)
    assert not model.check_one_pass(frame)
    assert list(model.score(frame)[0]) == list(cautious(frame))


def test_a_model_without_probabilities_is_unchanged() -> None:
    frame, labels = _data([0, 1])
    boosting = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(frame, labels)
    model = LoadedModel(
        digest=hash_bytes(b"model"),
        flavor="sklearn",
        estimator=boosting,
        contract=None,
        metadata={},
        feature_entry_point=None,
        _features=None,
        _predict=boosting.predict,
        _predict_proba=None,
    )
    assert not model.check_one_pass(frame)
    predictions, probabilities = model.score(frame)
    assert probabilities is None and list(predictions) == list(boosting.predict(frame))


def test_serving_switches_to_one_pass_after_enough_real_rows_agree() -> None:
    frame, labels = _data([0, 1])
    boosting = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(frame, labels)
    model = _loaded(boosting)
    rows = [frame.iloc[[i]] for i in range(ONE_PASS_AFTER_ROWS)]
    for row in rows[:-1]:
        model.score(row)  # one request, one row: two calls, compared
    assert not model.one_pass
    model.score(rows[-1])
    assert model.one_pass
    assert list(model.score(frame)[0]) == list(boosting.predict(frame))


def test_one_disagreement_keeps_two_calls_for_good() -> None:
    frame, labels = _data([0, 1])
    boosting = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(frame, labels)
    calls = {"n": 0}

    def sometimes_cautious(features: Any) -> Any:
        calls["n"] += 1
        threshold = 0.2 if calls["n"] == 3 else 0.5
        return (boosting.predict_proba(features)[:, 1] > threshold).astype(int)

    model = _loaded(boosting, predict=sometimes_cautious)
    for start in range(0, 2 * ONE_PASS_AFTER_ROWS, 10):
        model.score(frame.iloc[start : start + 10])
    assert not model.one_pass
    assert calls["n"] == len(range(0, 2 * ONE_PASS_AFTER_ROWS, 10))  # predict still called
