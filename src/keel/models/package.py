"""A model package: the estimator, the feature code it was trained with, and its contracts.

    <package>/                       (a directory, or the same tree as one uncompressed tar)
      model.json                     kind keel/model, version 1: flavor, file digests, contract
      estimator/estimator.skops      the estimator in its flavor's format (absent for functions)
      code/features/...              the feature entry point's source files, as in the project
      code/model/...                 a python-function model's source files

`model.json` lists the digest of every other file, so the package digest is the BLAKE3 of
`model.json`: `load_package` checks it against the expected digest, then every file against
`model.json`, and only then loads anything. Serving calls `LoadedModel.predict` with the raw
request columns; the packaged feature code computes the features, imported from the package
under a private module name, never from the user's project.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from keel.artifacts.hashing import hash_bytes
from keel.code.entrypoints import (
    CodeFingerprint,
    entry_point_source,
    fingerprint_files,
    load_entry_point,
)
from keel.code.usercode import check_features
from keel.domain.digest import Digest
from keel.errors import ConfigError, IntegrityError, NotFound
from keel.models.formats import (
    EstimatorFile,
    Flavor,
    PythonFunctionModel,
    flavor_of,
    load_estimator,
    save_estimator,
    untrusted_types,
)
from keel.models.signature import InferenceContract

__all__ = [
    "KIND",
    "MANIFEST",
    "LoadedModel",
    "load_package",
    "package_digest",
    "package_manifest",
    "save_package",
    "untrusted_package_types",
]

KIND: Final = "keel/model"
VERSION: Final = 1
MANIFEST: Final = "model.json"
_FEATURES_DIR: Final = "code/features"
_MODEL_CODE_DIR: Final = "code/model"
_ESTIMATOR_DIR: Final = "estimator"


def save_package(
    destination: Path,
    model: object,
    *,
    project_dir: Path | None = None,
    features: CodeFingerprint | None = None,
    contract: InferenceContract | None = None,
    metadata: Mapping[str, Any] | None = None,
    archive: bool = False,
) -> Path:
    """Write a package for `model` at `destination` (a new directory, or a tar when `archive`).

    `features` is the fingerprint recorded when the features were built; its files are copied
    from `project_dir` and must still have the recorded digests, so the package holds exactly
    the code the model was trained with (IntegrityError if a file changed since).
    `metadata` is free-form JSON (run id, model name...) kept in `model.json`.
    """
    if destination.exists():
        raise ConfigError(f"{destination} already exists; a package is written once")
    flavor = flavor_of(model)
    staging = Path(tempfile.mkdtemp(prefix=".keel-package-", dir=destination.parent))
    try:
        manifest: dict[str, Any] = {
            "kind": KIND,
            "version": VERSION,
            "flavor": flavor,
            "estimator": None,
            "python_function": None,
            "features": None,
            "inference_contract": None if contract is None else contract.to_dict(),
            "metadata": dict(metadata or {}),
        }
        if isinstance(model, PythonFunctionModel):
            code = entry_point_source(model.entry_point, model.project_dir)
            _copy_code(code, model.project_dir, staging / _MODEL_CODE_DIR)
            manifest["python_function"] = code.to_dict()
        else:
            (staging / _ESTIMATOR_DIR).mkdir()
            record = save_estimator(model, staging / _ESTIMATOR_DIR)
            stored = f"{_ESTIMATOR_DIR}/{record.path}"
            manifest["estimator"] = {
                "path": stored,
                "digest": str(hash_bytes((staging / stored).read_bytes())),
                "details": record.details,
            }
        if features is not None:
            if project_dir is None:
                raise ConfigError("save_package: `features` needs the `project_dir` it came from")
            _copy_code(features, project_dir, staging / _FEATURES_DIR)
            manifest["features"] = features.to_dict()
        (staging / MANIFEST).write_bytes(_canonical(manifest))
        if archive:
            _write_tar(staging, destination)
        else:
            staging.rename(destination)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return destination


def package_manifest(path: Path) -> dict[str, Any]:
    """A package's `model.json` (flavor, inference contract, metadata), without loading it."""
    document: dict[str, Any] = json.loads(_read_manifest_bytes(path))
    return document


def untrusted_package_types(manifest: Mapping[str, Any]) -> list[str]:
    """The types a package's skops estimator lists that keel's allow-list refuses, read from
    its `model.json` alone (packages written before the list was recorded give none: their
    load reads the file and refuses)."""
    estimator = manifest.get("estimator")
    if manifest.get("flavor") != "sklearn" or not isinstance(estimator, Mapping):
        return []
    details = estimator.get("details")
    listed = details.get("types") if isinstance(details, Mapping) else None
    if not isinstance(listed, list):
        return []
    return untrusted_types([str(name) for name in listed])


def package_digest(path: Path) -> Digest:
    """The digest that names a package: BLAKE3 of its `model.json` (directory or tar)."""
    return hash_bytes(_read_manifest_bytes(path))


def load_package(path: Path, expected_digest: Digest | None = None) -> LoadedModel:
    """Verify a package, then load its estimator and feature code.

    With `expected_digest`, `model.json` must match it; in every case each file must match the
    digest `model.json` gives it. Both checks run before any file is deserialised or imported.
    """
    manifest_bytes = _read_manifest_bytes(path)
    digest = hash_bytes(manifest_bytes)
    if expected_digest is not None and digest != expected_digest:
        raise IntegrityError(
            f"model package {path} has digest {digest}, expected {expected_digest}; "
            "it was not loaded",
            hint="the package is corrupted or was replaced: restore it from the artifact store",
        )
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        raise IntegrityError(f"{path}/{MANIFEST} is not valid JSON: {exc}") from exc
    if manifest.get("kind") != KIND or manifest.get("version") != VERSION:
        raise IntegrityError(
            f"{path} is not a {KIND} version {VERSION} package "
            f"(kind={manifest.get('kind')!r}, version={manifest.get('version')!r})"
        )
    root, cleanup = (path, None) if path.is_dir() else _extract_tar(path)
    try:
        _verify_files(root, manifest)
        return _load_verified(root, manifest, digest, cleanup)
    except BaseException:
        if cleanup is not None:
            cleanup()
        raise


@dataclass(eq=False)
class LoadedModel:
    """A verified, loaded package: raw columns in, predictions out."""

    digest: Digest
    flavor: Flavor
    estimator: Any
    contract: InferenceContract | None
    metadata: dict[str, Any]
    feature_entry_point: str | None
    _features: Callable[[Any], Any] | None
    _predict: Callable[[Any], Any]
    _predict_proba: Callable[[Any], Any] | None
    #: The classes in `predict_proba`'s column order once the predictions were seen to be the
    #: most probable class (`score` then runs the estimator once); until then, and for ever
    #: after a disagreement, None.
    _classes: Any = None
    #: Rows on which derived predictions agreed so far; -1 once decided (either way).
    _agreed: int = 0

    def features(self, raw: Any) -> Any:
        """The features the packaged code computes from the raw input DataFrame.

        Only the contract's inputs reach the feature code, as in training: callers holding
        whole raw rows (release gates, references, skew) need not know what keel.yaml's
        `data.exclude` left out.
        """
        raw = self._inputs(raw)
        if self._features is None:
            return raw
        return check_features(self._features, self._features(raw), raw)

    def _inputs(self, raw: Any) -> Any:
        if self.contract is None or not hasattr(raw, "columns"):
            return raw
        names = set(self.contract.input_names)
        if all(column in names for column in raw.columns):
            return raw
        return raw[[column for column in raw.columns if column in names]]

    def predict(self, raw: Any) -> Any:
        """Predictions for the rows of `raw` (a pandas DataFrame of the raw input columns)."""
        return self._predict(self.features(raw))

    @property
    def has_predict_proba(self) -> bool:
        return self._predict_proba is not None

    def predict_proba(self, raw: Any) -> Any:
        """Class probabilities, for estimators that have `predict_proba`."""
        if self._predict_proba is None:
            raise ConfigError(f"the {self.flavor} model {self.digest.short} has no predict_proba")
        return self._predict_proba(self.features(raw))

    @property
    def one_pass(self) -> bool:
        """Whether `score` derives predictions from the probabilities (one estimator pass)."""
        return self._classes is not None

    def check_one_pass(self, raw: Any) -> bool:
        """Score `raw` (real rows) twice over, as `score` does until it has seen
        `ONE_PASS_AFTER_ROWS` rows agree, and say whether it now runs the estimator once."""
        if self._agreed >= 0 and self._predict_proba is not None:
            features = self.features(raw)
            self._observe(self._predict(features), self._predict_proba(features), at_once=True)
        return self.one_pass

    def score(self, raw: Any) -> tuple[Any, Any | None]:
        """Predictions and class probabilities (None without `predict_proba`), computing the
        features once: what serving calls on every request.

        A classifier whose `predict` is by construction the most probable class (gradient
        boosting, forests, trees, logistic regression; see `_ARGMAX_CLASSIFIERS`) is called
        twice only until its predictions have matched that class on `ONE_PASS_AFTER_ROWS`
        real rows; from then on the prediction is derived from `predict_proba` (about a
        fifth less time per row for gradient boosting). One disagreement keeps two calls for
        good."""
        features = self.features(raw)
        if self._predict_proba is None:
            return self._predict(features), None
        classes = self._classes
        if classes is not None:
            import numpy as np

            probabilities = self._predict_proba(features)
            return classes[np.argmax(probabilities, axis=1)], probabilities
        predictions, probabilities = self._predict(features), self._predict_proba(features)
        if self._agreed >= 0:
            self._observe(predictions, probabilities)
        return predictions, probabilities

    def _observe(self, predictions: Any, probabilities: Any, *, at_once: bool = False) -> None:
        import numpy as np

        classes = _argmax_classes(self.estimator)
        predicted, matrix = np.asarray(predictions), np.asarray(probabilities)
        if (
            classes is None
            or matrix.ndim != 2
            or matrix.shape[1] != len(classes)
            or predicted.shape != (matrix.shape[0],)
            or not np.array_equal(classes[np.argmax(matrix, axis=1)], predicted)
        ):
            self._agreed = -1
            return
        self._agreed += len(predicted)
        if at_once or self._agreed >= ONE_PASS_AFTER_ROWS:
            self._classes, self._agreed = classes, -1


#: Real rows on which a known classifier's predictions must match its most probable class
#: before `LoadedModel.score` runs it once per call.
ONE_PASS_AFTER_ROWS: Final = 64

# -- internals ------------------------------------------------------------------------------------

#: Classifiers whose `predict` is, by construction, the class of highest `predict_proba`
#: (ties to the first class, as numpy's argmax): (module prefix, class name).
_ARGMAX_CLASSIFIERS: Final = frozenset(
    {
        ("sklearn.", "HistGradientBoostingClassifier"),
        ("sklearn.", "GradientBoostingClassifier"),
        ("sklearn.", "RandomForestClassifier"),
        ("sklearn.", "ExtraTreesClassifier"),
        ("sklearn.", "DecisionTreeClassifier"),
        ("sklearn.", "ExtraTreeClassifier"),
        ("sklearn.", "LogisticRegression"),
        ("xgboost.", "XGBClassifier"),
        ("lightgbm.", "LGBMClassifier"),
    }
)


def _argmax_classes(estimator: Any) -> Any:
    """The classes (a numpy array) of an estimator, or of a Pipeline's last step, that
    predicts the most probable class; None for any other."""
    import numpy as np

    final = estimator
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        final = steps[-1][1]
    kind = type(final)
    known = any(
        kind.__module__.startswith(prefix) and kind.__name__ == name
        for prefix, name in _ARGMAX_CLASSIFIERS
    )
    classes = getattr(final, "classes_", None)
    if not known or classes is None:
        return None
    return np.asarray(classes)


def _canonical(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def _copy_code(code: CodeFingerprint, source_dir: Path, target_dir: Path) -> None:
    for file in code.files:
        content = (source_dir / file.path).read_bytes()
        if hash_bytes(content) != file.digest:
            raise IntegrityError(
                f"{file.path} changed since its digest was recorded "
                f"(entry point {code.entry_point}); the package would not hold the trained code",
                hint="run training again so the model and its code match",
            )
        target = target_dir / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _write_tar(source: Path, destination: Path) -> None:
    """An uncompressed tar whose bytes depend only on the files (sorted, zero times and owners)."""
    temporary = destination.with_name(f".{destination.name}.partial")
    with tarfile.open(temporary, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            content = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(source).as_posix())
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    temporary.replace(destination)


def _read_manifest_bytes(path: Path) -> bytes:
    if path.is_dir():
        manifest = path / MANIFEST
        if not manifest.is_file():
            raise NotFound(f"{path} is not a model package: it has no {MANIFEST}")
        return manifest.read_bytes()
    if not path.is_file():
        raise NotFound(f"no model package at {path}")
    try:
        with tarfile.open(path, "r:") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise IntegrityError(f"{path}: {MANIFEST} is not a regular file")
            return member.read()
    except KeyError as exc:
        raise NotFound(f"{path} is not a model package: it has no {MANIFEST}") from exc
    except tarfile.TarError as exc:
        raise IntegrityError(
            f"{path} is neither a package directory nor a readable tar: {exc}"
        ) from exc


def _extract_tar(path: Path) -> tuple[Path, Callable[[], None]]:
    target = Path(tempfile.mkdtemp(prefix="keel-model-"))
    try:
        with tarfile.open(path, "r:") as tar:
            # The "data" filter refuses absolute paths, `..`, links out of the tree and devices.
            tar.extractall(target, filter=_data_not_programs)  # noqa: S202 - "data" filter inside
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise IntegrityError(f"{path}: cannot unpack the package: {exc}") from exc
    return target, lambda: shutil.rmtree(target, ignore_errors=True)


def _data_not_programs(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's "data" filter, and no file unpacked executable: a package holds data and
    Python modules that keel imports, never a program to run (keel writes them 0o644)."""
    member = tarfile.data_filter(member, dest)
    if member.isfile():
        return member.replace(mode=member.mode & 0o666, deep=False)
    return member


def _safe_relative(name: str) -> str:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise IntegrityError(f"model package lists an unsafe path: {name!r}")
    return pure.as_posix()


def _code_files(section: Mapping[str, Any]) -> CodeFingerprint:
    try:
        code = CodeFingerprint.from_dict(section)
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"model package has a malformed code section: {exc}") from exc
    recomputed = fingerprint_files(code.entry_point, code.files)
    if recomputed.digest != code.digest:
        raise IntegrityError(f"code digest of {code.entry_point} does not match its file list")
    return code


def _verify_files(root: Path, manifest: Mapping[str, Any]) -> None:
    expected: list[tuple[str, Digest]] = []
    if manifest.get("estimator"):
        estimator = manifest["estimator"]
        expected.append((_safe_relative(estimator["path"]), Digest.parse(estimator["digest"])))
    for key, folder in (("features", _FEATURES_DIR), ("python_function", _MODEL_CODE_DIR)):
        if manifest.get(key):
            code = _code_files(manifest[key])
            expected.extend((f"{folder}/{_safe_relative(f.path)}", f.digest) for f in code.files)
    for relative, digest in expected:
        file = root / relative
        if not file.is_file():
            raise IntegrityError(f"model package is missing {relative}, listed in {MANIFEST}")
        actual = hash_bytes(file.read_bytes())
        if actual != digest:
            raise IntegrityError(
                f"model package file {relative} has digest {actual}, {MANIFEST} says {digest}; "
                "nothing was loaded"
            )


def _load_code(root: Path, section: Mapping[str, Any], folder: str) -> Callable[..., Any]:
    code = _code_files(section)
    code_dir = root / folder
    loaded_from = entry_point_source(code.entry_point, code_dir)
    if loaded_from.digest != code.digest:
        # The files match, so this means the import walk found a different set of files.
        raise IntegrityError(f"packaged code for {code.entry_point} does not match its manifest")
    return load_entry_point(code.entry_point, code_dir, only_files={f.path for f in code.files})


def _load_verified(
    root: Path,
    manifest: Mapping[str, Any],
    digest: Digest,
    cleanup: Callable[[], None] | None,
) -> LoadedModel:
    flavor: Flavor = manifest["flavor"]
    estimator: Any = None
    if manifest.get("python_function"):
        estimator = _load_code(root, manifest["python_function"], _MODEL_CODE_DIR)
        predict, predict_proba = estimator, None
    else:
        section = manifest["estimator"]
        folder, _, name = section["path"].rpartition("/")
        estimator = load_estimator(root / folder, EstimatorFile(flavor, name, section["details"]))
        predict, predict_proba = _predictors(flavor, estimator, section["details"])
    features = manifest.get("features")
    model = LoadedModel(
        digest=digest,
        flavor=flavor,
        estimator=estimator,
        contract=(
            None
            if manifest.get("inference_contract") is None
            else InferenceContract.from_dict(manifest["inference_contract"])
        ),
        metadata=dict(manifest.get("metadata") or {}),
        feature_entry_point=None if not features else str(features["entry_point"]),
        _features=None if not features else _load_code(root, features, _FEATURES_DIR),
        _predict=predict,
        _predict_proba=predict_proba,
    )
    if cleanup is not None:
        # An unpacked tar stays on disk while the model lives: tracebacks and inspect.getsource
        # of the packaged feature code read those files.
        weakref.finalize(model, cleanup)
    return model


def _predictors(
    flavor: Flavor, estimator: Any, details: Mapping[str, Any]
) -> tuple[Callable[[Any], Any], Callable[[Any], Any] | None]:
    if flavor == "xgboost" and details.get("class") == "Booster":
        import xgboost

        return (lambda features: estimator.predict(xgboost.DMatrix(features))), None
    predict_proba = getattr(estimator, "predict_proba", None)
    return estimator.predict, predict_proba if callable(predict_proba) else None
