"""Estimator files that load without unpickling arbitrary code, one writer and reader per flavor.

    flavor            file              loads through
    sklearn           estimator.skops   skops, once every type it names passed the allow-list
    xgboost           estimator.ubj     XGBoost's own format (UBJSON): data, not code
    lightgbm          estimator.txt     LightGBM's own text format: data, not code
    python_function   source files      keel.code.entrypoints.load_entry_point, from the package

XGBoost and LightGBM are imported lazily; without them the flavor raises DependencyMissing
naming the extra to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal

from keel.code.usercode import type_name, wrong_return
from keel.errors import ConfigError, DependencyMissing, IntegrityError

__all__ = [
    "TRUSTED_TYPES",
    "EstimatorFile",
    "Flavor",
    "PythonFunctionModel",
    "check_model",
    "flavor_of",
    "load_estimator",
    "save_estimator",
    "untrusted_types",
]

Flavor = Literal["sklearn", "xgboost", "lightgbm", "python_function"]

#: Every type a skops file may name beyond what skops itself trusts (plain containers, numpy
#: arrays, dtypes and ufuncs, scikit-learn's estimator classes), by exact name. These are the
#: types skops reports for scikit-learn's estimators and pipelines: fitted trees, tree
#: predictors, losses, neighbour trees, distance metrics, optimiser state. No name stands for a
#: module: a prefix such as `numpy.` would let any of its functions in (`numpy.savetxt` writes
#: files), and a crafted file can call a trusted function with arguments of its choosing (a
#: FunctionTransformer's `func`, a `functools.partial`). The few functions listed compute on
#: arrays and nothing else; `functools.partial` is listed because scikit-learn's
#: HistGradientBoosting with categorical features holds a partial of `check_array`, and the
#: function a partial wraps is itself a type of the file that must be on this list.
TRUSTED_TYPES: Final = frozenset(
    {
        "builtins.object",  # make_column_selector(dtype_include=object)
        "functools.partial",
        "numpy.dtype",
        # Sparse matrices an estimator keeps (neighbours or support vectors fitted on them).
        "scipy.sparse._coo.coo_matrix",
        "scipy.sparse._csc.csc_array",
        "scipy.sparse._csc.csc_matrix",
        "scipy.sparse._csr.csr_array",
        "scipy.sparse._csr.csr_matrix",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.compose._column_transformer.make_column_selector",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.feature_selection._mutual_info.mutual_info_classif",
        "sklearn.feature_selection._mutual_info.mutual_info_regression",
        "sklearn.feature_selection._univariate_selection.chi2",
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.tree._tree.Tree",
        "sklearn.utils._bunch.Bunch",
        "sklearn.utils.validation.check_array",
        *(
            f"sklearn._loss.loss.{name}"
            for name in (
                "AbsoluteError",
                "ExponentialLoss",
                "HalfBinomialLoss",
                "HalfGammaLoss",
                "HalfMultinomialLoss",
                "HalfPoissonLoss",
                "HalfSquaredError",
                "HalfTweedieLoss",
                "HalfTweedieLossIdentity",
                "HuberLoss",
                "PinballLoss",
            )
        ),
        # Not PyFuncDistance64: it calls a Python function of the file's choosing.
        *(
            f"sklearn.metrics._dist_metrics.{name}Distance64"
            for name in (
                "BrayCurtis",
                "Canberra",
                "Chebyshev",
                "Dice",
                "Euclidean",
                "Hamming",
                "Haversine",
                "Jaccard",
                "Mahalanobis",
                "Manhattan",
                "Matching",
                "Minkowski",
                "RogersTanimoto",
                "RussellRao",
                "SEuclidean",
                "SokalMichener",
                "SokalSneath",
            )
        ),
    }
)

_FILE_NAMES: Final[Mapping[str, str]] = {
    "sklearn": "estimator.skops",
    "xgboost": "estimator.ubj",
    "lightgbm": "estimator.txt",
}
_XGBOOST_CLASSES: Final = frozenset({"XGBClassifier", "XGBRegressor", "XGBRanker", "Booster"})


@dataclass(frozen=True, slots=True)
class PythonFunctionModel:
    """A model that is plain code: `entry_point` (`module:function`) in `project_dir`.

    The function takes the feature DataFrame and returns the predictions. It is stored as its
    source files and loaded from the package, like feature code.
    """

    entry_point: str
    project_dir: Path


@dataclass(frozen=True, slots=True)
class EstimatorFile:
    """How an estimator is stored: its flavor, file name in the package, and flavor details."""

    flavor: Flavor
    path: str
    details: dict[str, Any] = field(default_factory=dict)


def flavor_of(model: object) -> Flavor:
    """The flavor that stores `model`, from the library its class comes from."""
    if isinstance(model, PythonFunctionModel):
        return "python_function"
    root = type(model).__module__.partition(".")[0]
    if root in ("xgboost", "lightgbm"):
        return root  # type: ignore[return-value]  # the two literal values just compared
    if root == "sklearn" or hasattr(model, "__sklearn_tags__"):
        return "sklearn"
    raise ConfigError(
        f"cannot store a model of type {type(model).__module__}.{type(model).__qualname__}: "
        "supported are scikit-learn estimators and pipelines, XGBoost, LightGBM, "
        "and python functions (keel.models.PythonFunctionModel)"
    )


def check_model(function: Callable[..., Any], model: Any) -> Any:
    """`model`, what the training function returned, if keel can store it."""
    expected = (
        "a fitted model: a scikit-learn estimator or pipeline, an XGBoost or LightGBM model, "
        "or a keel.models.PythonFunctionModel"
    )
    if model is None:
        raise wrong_return(function, "returned None (a missing `return model`?)", expected)
    try:
        flavor_of(model)
    except ConfigError:
        raise wrong_return(function, f"returned {type_name(model)}", expected) from None
    return model


def _require(package: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise DependencyMissing(package, extra, f"storing {extra} models") from exc


def save_estimator(model: object, directory: Path) -> EstimatorFile:
    """Write `model` into `directory` in its flavor's format (not for python functions)."""
    flavor = flavor_of(model)
    if flavor == "python_function":
        raise ConfigError("python-function models are stored as source files, not estimators")
    target = directory / _FILE_NAMES[flavor]
    saver: Callable[[Any, Path], dict[str, Any]] = {
        "sklearn": _save_sklearn,
        "xgboost": _save_xgboost,
        "lightgbm": _save_lightgbm,
    }[flavor]
    details = saver(model, target)
    details.setdefault("class", f"{type(model).__module__}.{type(model).__qualname__}")
    return EstimatorFile(flavor, target.name, details)


def load_estimator(directory: Path, record: EstimatorFile) -> Any:
    """Read an estimator written by `save_estimator`; the caller has verified its digest."""
    path = directory / record.path
    if record.flavor == "sklearn":
        return _load_sklearn(path, record.details)
    if record.flavor == "xgboost":
        return _load_xgboost(path, record.details)
    if record.flavor == "lightgbm":
        return _load_lightgbm(path, record.details)
    raise ConfigError(f"flavor '{record.flavor}' has no estimator file")


# -- scikit-learn via skops --------------------------------------------------------------------


def _save_sklearn(model: Any, path: Path) -> dict[str, Any]:
    sio = _require("skops.io", "sklearn")
    sio.dump(model, path)
    # The types the file holds, listed once here so a load reads the file once: the list is
    # checked against the allow-list, then skops refuses any type in the file not in it.
    types = sorted(sio.get_untrusted_types(file=path))
    return {"format": "skops", "types": types}


def untrusted_types(types: list[str]) -> list[str]:
    """The types of `types` that are not on keel's allow-list (`TRUSTED_TYPES`)."""
    return sorted(name for name in types if name not in TRUSTED_TYPES)


def _load_sklearn(path: Path, details: Mapping[str, Any]) -> Any:
    sio = _require("skops.io", "sklearn")
    listed = details.get("types")
    if isinstance(listed, list) and all(isinstance(t, str) for t in listed):
        # skops.load(trusted=listed) still refuses any type of the file missing from the list.
        named: list[str] = list(listed)
    else:  # packages written before the list was recorded: read it from the file
        named = list(sio.get_untrusted_types(file=path))
    refused = untrusted_types(named)
    if refused:
        raise IntegrityError(
            f"{path.name} references types keel does not trust, so it was not loaded: "
            f"{', '.join(refused)}",
            hint=(
                "keel loads the scikit-learn types its estimators and pipelines need, listed "
                "by exact name in keel.models.formats.TRUSTED_TYPES; a function of the "
                "project's own belongs in the feature code, not in the estimator"
            ),
        )
    untrusted_error = _require("skops.io.exceptions", "sklearn").UntrustedTypesFoundException
    try:
        return sio.load(path, trusted=named)
    except untrusted_error as exc:
        raise IntegrityError(
            f"{path.name} holds types its package does not list, so it was not loaded: {exc}",
            hint="the package was altered after it was written: restore it from the store",
        ) from None


# -- XGBoost --------------------------------------------------------------------------------


def _save_xgboost(model: Any, path: Path) -> dict[str, Any]:
    _require("xgboost", "xgboost")
    model.save_model(str(path))
    return {"format": "xgboost-ubj", "class": type(model).__name__}


def _load_xgboost(path: Path, details: Mapping[str, Any]) -> Any:
    xgboost = _require("xgboost", "xgboost")
    name = str(details.get("class", "Booster"))
    if name not in _XGBOOST_CLASSES:
        raise IntegrityError(f"{path.name}: unknown XGBoost class {name!r}")
    if name == "Booster":
        return xgboost.Booster(model_file=str(path))
    model = getattr(xgboost, name)()
    model.load_model(str(path))
    return model


# -- LightGBM -------------------------------------------------------------------------------


def _save_lightgbm(model: Any, path: Path) -> dict[str, Any]:
    lightgbm = _require("lightgbm", "lightgbm")
    if isinstance(model, lightgbm.Booster):
        model.save_model(str(path))
        return {"format": "lightgbm-text", "class": "Booster"}
    # The scikit-learn wrappers have no loader of their own: store the booster, and the classes
    # so that predict() can map probabilities back to labels.
    model.booster_.save_model(str(path))
    details: dict[str, Any] = {"format": "lightgbm-text", "class": type(model).__name__}
    if hasattr(model, "classes_"):
        details["classes"] = [_plain(c) for c in model.classes_]
    return details


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold."""
    return value.item() if hasattr(value, "item") else value


def _load_lightgbm(path: Path, details: Mapping[str, Any]) -> Any:
    lightgbm = _require("lightgbm", "lightgbm")
    booster = lightgbm.Booster(model_file=str(path))
    if "classes" in details:
        return _LightGBMClassifier(booster, list(details["classes"]))
    return booster


class _LightGBMClassifier:
    """predict/predict_proba over a loaded booster, as the scikit-learn wrapper offers them."""

    def __init__(self, booster: Any, classes: list[Any]) -> None:
        self.booster = booster
        self.classes_ = classes

    def predict_proba(self, features: Any) -> Any:
        import numpy as np

        raw = np.asarray(self.booster.predict(features))
        if raw.ndim == 1:  # binary objectives return P(class 1) only
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, features: Any) -> Any:
        import numpy as np

        indices = self.predict_proba(features).argmax(axis=1)
        return np.asarray(self.classes_)[indices]
