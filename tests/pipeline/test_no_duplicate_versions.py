"""No duplicate model versions: `keel reproduce` leaves training's step cache alone, training
an unchanged project registers nothing and names the version that holds the model, and
retraining with nothing new decides so without opening a release request."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from keel.project import Project
from tests.fixtures.cli import Keel
from tests.pipeline.test_user_code import FEATURES, SPEC, TRAIN, _raw


@pytest.fixture(params=["sqlite", "postgresql"])
def toy(
    request: pytest.FixtureRequest, keel: Keel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    if request.param == "postgresql":
        monkeypatch.setenv("KEEL_DB_URL", request.getfixturevalue("fresh_postgres_url"))
    assert keel("init").code == 0
    (tmp_path / "keel.yaml").write_text(SPEC)
    (tmp_path / "features.py").write_text(FEATURES)
    (tmp_path / "train.py").write_text(TRAIN)
    pq.write_table(_raw(), tmp_path / "raw.parquet")
    first = keel("train", "--json")
    assert first.code == 0, first.err
    assert first.json()["model"] == {"name": "toy", "version": 1}
    return tmp_path


def _open(folder: Path) -> Project:
    env = {k: v for k, v in os.environ.items() if k.startswith("KEEL_")}
    return Project.open(folder, env={**env, "KEEL_USER": "ana"})


def _versions(folder: Path) -> list[int]:
    with _open(folder) as project:
        return [v.version for v in project.metadata.models.versions("toy")]


def test_train_after_reproduce_registers_nothing_and_names_the_version(
    keel: Keel, toy: Path
) -> None:
    reproduced = keel("reproduce", "toy@1", "--json")
    assert reproduced.code == 0, reproduced.out + reproduced.err
    assert reproduced.json()["ok"] is True

    again = keel("train", "--json")
    assert again.code == 0, again.err
    document = again.json()
    outcomes = {s["step"]: s["outcome"] for s in document["steps"]}
    assert outcomes["train"] == "cache_hit" and outcomes["register"] == "skipped"
    assert document["model"] is None
    assert document["unchanged"] == {"name": "toy", "version": 1}
    assert any(note.startswith("unchanged: same as toy@1") for note in document["notes"])
    text = keel("train")
    assert text.code == 0 and "unchanged: same as toy@1, nothing registered" in text.out
    assert _versions(toy) == [1]


def test_retrain_with_nothing_new_opens_no_request(keel: Keel, toy: Path) -> None:
    with _open(toy) as project:
        project.metadata.releases.move_alias(
            "toy", "production", 1, expected_holder=None, actor="ana", reason="first release"
        )
    assert keel("reproduce", "toy@1").code == 0
    retrained = keel("retrain", "--json")
    assert retrained.code == 0, retrained.out + retrained.err
    document = retrained.json()
    assert document["decision"] == "no-change"
    assert document["challenger"] is None and document["release"] is None
    assert any("unchanged: same as toy@1" in note for note in document["notes"])
    assert _versions(toy) == [1]
    with _open(toy) as project:
        assert project.metadata.releases.requests() == []
        assert project.metadata.releases.holder("toy", "production") == 1
