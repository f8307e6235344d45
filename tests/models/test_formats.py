"""Estimator flavors: the skops allow-list, optional libraries, and their native formats."""

from __future__ import annotations

import importlib.util
import operator
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.errors import ConfigError, DependencyMissing, IntegrityError
from keel.models import flavor_of, load_package, package_digest, save_package
from keel.models.formats import save_estimator, untrusted_types


def test_untrusted_type_is_named_and_never_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import skops.io
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    features = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = Pipeline(
        [("neg", FunctionTransformer(operator.neg)), ("lr", LogisticRegression())]
    ).fit(features, [0, 1, 0, 1])
    path = save_package(tmp_path / "model", model)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("skops.io.load ran on an untrusted file")

    monkeypatch.setattr(skops.io, "load", refuse)
    with pytest.raises(IntegrityError, match=r"_operator\.neg"):
        load_package(path, expected_digest=package_digest(path))


def test_allow_list_is_exact_names() -> None:
    """No name stands for a module: a function of numpy, scipy or scikit-learn that is not
    listed is refused, however trusted its library."""
    assert untrusted_types(
        [
            "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
            "sklearn.tree._tree.Tree",
            "scipy.sparse._csr.csr_matrix",
            "functools.partial",
            "sklearn.utils.validation.check_array",
            "numpy.savetxt",
            "numpy.log1p",
            "builtins.eval",
            "os.system",
            "numpy.load",
            "sklearn.utils._testing.assert_allclose",
            "sklearn.metrics._dist_metrics.PyFuncDistance64",
            "sklearn.tree._tree",
            "mypackage.Model",
        ]
    ) == [
        "builtins.eval",
        "mypackage.Model",
        "numpy.load",
        "numpy.log1p",
        "numpy.savetxt",
        "os.system",
        "sklearn.metrics._dist_metrics.PyFuncDistance64",
        "sklearn.tree._tree",
        "sklearn.utils._testing.assert_allclose",
    ]


def test_unsupported_model_type() -> None:
    with pytest.raises(ConfigError, match=r"cannot store a model of type builtins\.dict"):
        flavor_of({})


@pytest.mark.parametrize(("package", "extra"), [("xgboost", "xgboost"), ("lightgbm", "lightgbm")])
def test_missing_library_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: str, extra: str
) -> None:
    # None in sys.modules makes `import package` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, package, None)
    fake_model = type("Booster", (), {"__module__": f"{package}.core"})()
    with pytest.raises(DependencyMissing) as raised:
        save_estimator(fake_model, tmp_path)
    assert raised.value.extra == extra
    assert raised.value.hint == f"pip install 'keelml[{extra}]'"


def _xy() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    return features, (features["a"] + 0.3 * features["b"] > 0).to_numpy().astype(int)


@pytest.mark.skipif(importlib.util.find_spec("xgboost") is None, reason="xgboost not installed")
def test_xgboost_native_round_trip(tmp_path: Path) -> None:
    import xgboost

    features, target = _xy()
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(features, target)
    loaded = load_package(save_package(tmp_path / "model", model))
    assert loaded.flavor == "xgboost"
    assert (tmp_path / "model" / "estimator" / "estimator.ubj").is_file()
    assert np.array_equal(loaded.predict(features), model.predict(features))
    assert np.allclose(loaded.predict_proba(features), model.predict_proba(features))


@pytest.mark.skipif(importlib.util.find_spec("lightgbm") is None, reason="lightgbm not installed")
def test_lightgbm_native_round_trip(tmp_path: Path) -> None:
    import lightgbm

    features, target = _xy()
    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1).fit(features, target)
    loaded = load_package(save_package(tmp_path / "model", model))
    assert loaded.flavor == "lightgbm"
    assert np.array_equal(loaded.predict(features), model.predict(features))
    assert np.allclose(loaded.predict_proba(features), model.predict_proba(features))


def test_partial_is_trusted_only_around_a_trusted_function(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    features = pd.DataFrame(
        {"x": rng.random(300), "carrier": pd.Categorical(rng.choice(["AA", "UA", "DL"], 300))}
    )
    target = rng.integers(0, 2, 300)
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype")
    model.fit(features, target)
    path = save_package(tmp_path / "model", model)
    loaded = load_package(path, expected_digest=package_digest(path))
    assert np.array_equal(loaded.predict(features), model.predict(features))
    assert untrusted_types(["functools.partial", "builtins.print"]) == ["builtins.print"]


def test_a_type_list_edited_to_hide_a_type_is_still_refused(tmp_path: Path) -> None:
    """The package lists its skops types so a load reads the file once; a list that leaves out
    a type the file holds cannot smuggle it in: skops refuses types outside the list."""
    import json

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    features = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = Pipeline(
        [("neg", FunctionTransformer(operator.neg)), ("lr", LogisticRegression())]
    ).fit(features, [0, 1, 0, 1])
    path = save_package(tmp_path / "model", model)
    manifest_path = path / "model.json"
    manifest = json.loads(manifest_path.read_text())
    listed = manifest["estimator"]["details"]["types"]
    assert "_operator.neg" in listed
    manifest["estimator"]["details"]["types"] = [t for t in listed if t != "_operator.neg"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match=r"_operator\.neg"):
        load_package(path)
