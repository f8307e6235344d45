"""Model packages: round trips, the trained feature code at predict time, refusal of bad bytes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.code.entrypoints import entry_point_source, load_entry_point
from keel.errors import ConfigError, IntegrityError
from keel.models import (
    PythonFunctionModel,
    formats,
    infer_inference_contract,
    load_package,
    package_digest,
    save_package,
)
from tests.models.conftest import classifier


@pytest.fixture
def trained(
    project: Path, flights: tuple[pd.DataFrame, pd.Series]
) -> tuple[Any, Any, pd.DataFrame]:
    raw, target = flights
    build = load_entry_point("features:build", project)
    model = classifier().fit(build(raw), target)
    return model, entry_point_source("features:build", project), raw


def _save(tmp_path: Path, project: Path, trained: tuple[Any, Any, pd.DataFrame], **kw: Any) -> Path:
    model, fingerprint, raw = trained
    contract = infer_inference_contract(raw, {"prediction": "integer", "probability": "float"})
    return save_package(
        tmp_path / ("model.tar" if kw.get("archive") else "model"),
        model,
        project_dir=project,
        features=fingerprint,
        contract=contract,
        metadata={"run": "r1"},
        **kw,
    )


@pytest.mark.parametrize("archive", [False, True])
def test_round_trip_predicts_from_raw_columns_with_the_packaged_code(
    tmp_path: Path, project: Path, trained: tuple[Any, Any, pd.DataFrame], archive: bool
) -> None:
    model, _, raw = trained
    path = _save(tmp_path, project, trained, archive=archive)
    loaded = load_package(path, expected_digest=package_digest(path))
    expected = model.predict(load_entry_point("features:build", project)(raw))
    assert np.array_equal(loaded.predict(raw), expected)
    assert loaded.has_predict_proba
    assert np.allclose(loaded.predict_proba(raw), model.predict_proba(loaded.features(raw)))
    assert loaded.flavor == "sklearn"
    assert loaded.feature_entry_point == "features:build"
    assert loaded.metadata == {"run": "r1"}
    assert loaded.contract is not None and "carrier" in loaded.contract.input_names
    assert "features" not in sys.modules and "helpers" not in sys.modules


def test_packaged_code_is_used_even_after_the_project_changes(
    tmp_path: Path, project: Path, trained: tuple[Any, Any, pd.DataFrame]
) -> None:
    model, _, raw = trained
    expected = model.predict(load_entry_point("features:build", project)(raw))
    path = _save(tmp_path, project, trained)
    # Break the project's helper: serving must not see it.
    (project / "helpers.py").write_text("def is_summer(month):\n    raise RuntimeError\n")
    assert np.array_equal(load_package(path).predict(raw), expected)


def test_tar_bytes_depend_only_on_the_files(tmp_path: Path, project: Path) -> None:
    # skops names objects by id(), so only code-only packages can show byte-equal archives.
    model = PythonFunctionModel("features:build", project)
    first = save_package(tmp_path / "a.tar", model, archive=True)
    second = save_package(tmp_path / "b.tar", model, archive=True)
    assert first.read_bytes() == second.read_bytes()
    assert package_digest(first) == package_digest(second)


def test_wrong_expected_digest_refused_before_loading(
    tmp_path: Path,
    project: Path,
    trained: tuple[Any, Any, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _save(tmp_path, project, trained)
    digest = package_digest(path)
    manifest = json.loads((path / "model.json").read_text())
    manifest["metadata"]["run"] = "tampered"
    (path / "model.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(formats, "_load_sklearn", _must_not_load)
    with pytest.raises(IntegrityError, match="expected"):
        load_package(path, expected_digest=digest)


def test_corrupted_estimator_refused_before_loading(
    tmp_path: Path,
    project: Path,
    trained: tuple[Any, Any, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _save(tmp_path, project, trained)
    digest = package_digest(path)
    estimator = path / "estimator" / "estimator.skops"
    data = bytearray(estimator.read_bytes())
    data[len(data) // 2] ^= 0xFF
    estimator.write_bytes(bytes(data))
    monkeypatch.setattr(formats, "_load_sklearn", _must_not_load)
    with pytest.raises(IntegrityError, match=r"estimator/estimator\.skops has digest"):
        load_package(path, expected_digest=digest)


def test_corrupted_feature_code_refused_before_import(
    tmp_path: Path, project: Path, trained: tuple[Any, Any, pd.DataFrame]
) -> None:
    path = _save(tmp_path, project, trained)
    (path / "code" / "features" / "helpers.py").write_text("raise SystemExit('ran!')\n")
    with pytest.raises(IntegrityError, match=r"code/features/helpers\.py"):
        load_package(path)


def test_feature_code_edited_after_training_is_refused_when_packaging(
    tmp_path: Path, project: Path, trained: tuple[Any, Any, pd.DataFrame]
) -> None:
    (project / "helpers.py").write_text("def is_summer(month):\n    return month * 0\n")
    with pytest.raises(IntegrityError, match=r"helpers\.py changed"):
        _save(tmp_path, project, trained)
    assert not (tmp_path / "model").exists()


def test_python_function_model(tmp_path: Path, project: Path) -> None:
    (project / "rules.py").write_text(
        "from helpers import is_summer\n\n"
        "def predict(features):\n    return (features['dep_delay'] > 15).astype(int)\n"
    )
    path = save_package(
        tmp_path / "model",
        PythonFunctionModel("rules:predict", project),
        project_dir=project,
        features=entry_point_source("features:build", project),
    )
    loaded = load_package(path, expected_digest=package_digest(path))
    raw = pd.DataFrame(
        {
            "month": [7, 1],
            "dep_delay": [30.0, None],
            "distance": [100, 200],
            "hour": [18, 6],
            "carrier": ["UA", "AA"],
            "origin": ["JFK", "EWR"],
        }
    )
    assert list(loaded.predict(raw)) == [1, 0]
    assert not loaded.has_predict_proba
    with pytest.raises(ConfigError, match="no predict_proba"):
        loaded.predict_proba(raw)
    stored = sorted(p.relative_to(path).as_posix() for p in path.rglob("*.py"))
    assert stored == [
        "code/features/features.py",
        "code/features/helpers.py",
        "code/model/helpers.py",
        "code/model/rules.py",
    ]


def test_existing_destination_is_refused(
    tmp_path: Path, project: Path, trained: tuple[Any, Any, pd.DataFrame]
) -> None:
    (tmp_path / "model").mkdir()
    with pytest.raises(ConfigError, match="already exists"):
        _save(tmp_path, project, trained)


def _must_not_load(path: Path) -> Any:
    raise AssertionError(f"{path} was deserialised before verification")


def test_a_package_unpacks_without_executable_files(tmp_path: Path) -> None:
    import io
    import os
    import tarfile

    from keel.models.package import _extract_tar

    path = tmp_path / "odd.tar"
    with tarfile.open(path, "w") as tar:
        content = b"#!/bin/sh\necho from a package\n"
        info = tarfile.TarInfo("code/run.sh")
        info.size, info.mode = len(content), 0o755
        tar.addfile(info, io.BytesIO(content))

    previous = os.umask(0o022)
    try:
        root, cleanup = _extract_tar(path)
    finally:
        os.umask(previous)
    try:
        assert (root / "code" / "run.sh").stat().st_mode & 0o777 == 0o644
    finally:
        cleanup()
