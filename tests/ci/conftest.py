"""Projects for the CI tests: a small flights project to smoke-test, and the example as
`keel init --example flights` writes it (both built once, copied per test)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from keel.contracts import infer_contract, write_contract
from keel.project import Project
from tests.pipeline.test_train import EXAMPLE, _raw_sample

ENV = {"KEEL_USER": "ana"}
#: The example's data runs January to June 2013: its checks run as of the next morning.
EXAMPLE_AS_OF = "2013-07-01T06:00:00Z"

SMOKE_SPEC = {
    "name": "flights-delay",
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


@pytest.fixture(scope="session")
def smoke_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4,000 flights with the example's code and a contract inferred from them."""
    folder = tmp_path_factory.mktemp("ci-smoke") / "flights"
    Project.init(folder, env=ENV).close()
    for name in ("features.py", "train.py"):
        shutil.copy(EXAMPLE / "project" / name, folder / name)
    raw = _raw_sample(4_000)
    pq.write_table(raw, folder / "raw.parquet")
    write_contract(infer_contract(raw, timestamp="time_hour"), folder / "contracts" / "raw.yaml")
    (folder / "keel.yaml").write_text(yaml.safe_dump(SMOKE_SPEC, sort_keys=False))
    return folder


@pytest.fixture
def smoke_project(smoke_template: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "flights"
    shutil.copytree(smoke_template, folder)
    return folder


@pytest.fixture(scope="session")
def example_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ci-example") / "flights"
    Project.init(folder, env=ENV, example="flights").close()
    return folder


@pytest.fixture
def example_project(example_template: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(example_template, folder)
    return folder
