"""A project with three trained versions of the flights model, copied for each test.

v1 is a small model, v2 a better one, v3 a deliberately weak stump; all were trained on
the same data (with its contract checked), so their holdouts are the same rows. Tests
rewrite keel.yaml's `release:` section to the policy they exercise.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from keel.contracts import infer_contract, write_contract
from keel.pipeline.train import train
from keel.project import Project
from tests.train.test_train import EXAMPLE, _raw_sample

AS_OF = datetime(2014, 1, 1, 6, tzinfo=UTC)
MODEL = "flights-delay"

BASE = {
    "name": MODEL,
    "data": {
        "source": "raw.parquet",
        "timestamp": "time_hour",
        "target": "late",
        "contract": "contracts/raw.yaml",
    },
    "features": {"entry_point": "features:build"},
    "training": {"entry_point": "train:train", "params": {"max_iter": 20}, "seed": 7},
    "metrics": ["roc_auc", "log_loss"],
}

#: The params each version was trained with.
PARAMS = {
    1: {"max_iter": 10},
    2: {"max_iter": 150},
    3: {"max_iter": 1, "max_leaf_nodes": 2, "learning_rate": 0.05},
}


def write_spec(folder: Path, release: dict[str, object] | None = None, **changes: object) -> None:
    spec: dict[str, object] = {**BASE, **changes}
    if release is not None:
        spec["release"] = release
    (folder / "keel.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("release-template") / "flights"
    env = {"KEEL_USER": "ana"}
    Project.init(folder, env=env).close()
    for name in ("features.py", "train.py"):
        shutil.copy(EXAMPLE / "project" / name, folder / name)
    raw = _raw_sample(20_000)
    pq.write_table(raw, folder / "raw.parquet")
    write_contract(
        infer_contract(raw, timestamp="time_hour", source="raw.parquet", inferred_at=AS_OF),
        folder / "contracts" / "raw.yaml",
    )
    for number, params in PARAMS.items():
        write_spec(folder, training={**BASE["training"], "params": params})  # type: ignore[dict-item]
        with Project.open(folder, env=env) as project:
            result = train(project, as_of=AS_OF)
            assert result.registered is not None and result.registered.version == number
    write_spec(folder)
    return folder


@pytest.fixture
def release_project(trained_template: Path, tmp_path: Path) -> Path:
    """A private copy of the trained project (its SQLite store and artifacts included)."""
    folder = tmp_path / "flights"
    shutil.copytree(trained_template, folder)
    return folder
