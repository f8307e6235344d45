"""Estimator files that load without unpickling arbitrary code, one writer and reader per flavor.

    flavor            file              loads through
    sklearn           estimator.skops   skops, once every type it names passed the allow-list
    xgboost           estimator.ubj     XGBoost's own format (UBJSON): data, not code
    lightgbm          estimator.txt     LightGBM's own text format: data, not code
    python_function   source files      keel.pipeline.code.load_entry_point, from the package

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

from keel.errors import ConfigError, DependencyMissing, IntegrityError

__all__ = [
    "REFUSED_PREFIXES",
    "TRUSTED_PREFIXES",
    "EstimatorFile",
    "Flavor",
    "PythonFunctionModel",
    "flavor_of",
    "load_estimator",
    "save_estimator",
    "untrusted_types",
]

Flavor = Literal["sklearn", "xgboost", "lightgbm", "python_function"]

#: Types a skops file may name. skops already trusts plain containers and numpy arrays; what it
#: reports as untrusted must come from these libraries...
TRUSTED_PREFIXES: Final = ("sklearn.", "numpy.", "scipy.")
#: ...and not from parts of them that read files, compile code or load shared libraries, which a
#: crafted file could reference as a "function" (e.g. a FunctionTransformer's `func`).
REFUSED_PREFIXES: Final = (
    "numpy.load",
    "numpy.lib.npyio",
    "numpy.lib._npyio_impl",
    "numpy.f2py",
    "numpy.ctypeslib",
    "numpy.distutils",
    "numpy.testing",
    "numpy.fromfile",
    "numpy.memmap",
    "scipy.io",
    "scipy.weave",
    "sklearn.datasets",
    "sklearn.externals",
    "sklearn.utils._testing",
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


#: Exact names trusted beyond the prefixes. `functools.partial` is a wrapper: skops reports the
#: function it wraps as a type of its own, which must pass the rules above (scikit-learn's
#: HistGradientBoosting with categorical features holds a partial of check_array).
TRUSTED_EXACT: Final = frozenset({"functools.partial"})


def untrusted_types(types: list[str]) -> list[str]:
    """The types of `types` that fall outside keel's allow-list."""
    return sorted(
        name
        for name in types
        if name not in TRUSTED_EXACT
        and (not name.startswith(TRUSTED_PREFIXES) or name.startswith(REFUSED_PREFIXES))
    )


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
            hint="only scikit-learn, numpy and scipy types are loaded from skops files",
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
