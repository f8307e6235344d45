"""`keel train` as a user runs it: progress on stderr, one JSON document with --json."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.cli.conftest import Keel
from tests.pipeline.test_train import EXAMPLE, SPEC, _raw_sample


@pytest.fixture(scope="module")
def raw_table() -> pa.Table:
    return _raw_sample(20_000)


@pytest.fixture
def flights(keel: Keel, tmp_path: Path, raw_table: pa.Table) -> Keel:
    assert keel("init").code == 0
    (tmp_path / "keel.yaml").write_text(SPEC)
    for name in ("features.py", "train.py"):
        shutil.copy(EXAMPLE / "project" / name, tmp_path / name)
    pq.write_table(raw_table, tmp_path / "raw.parquet")
    return keel


def test_train_twice_then_force(flights: Keel) -> None:
    first = flights("train", "--as-of", "2014-01-01T06:00:00Z")
    assert first.code == 0, first.err
    assert "features  ran" in first.err  # progress goes to stderr
    assert "roc_auc" in first.out

    second = flights("train", "--as-of", "2014-01-01T06:00:00Z", "--json")
    assert second.code == 0
    document = second.json()
    outcomes = {step["step"]: step["outcome"] for step in document["steps"]}
    assert outcomes["features"] == outcomes["train"] == outcomes["evaluate"] == "cache_hit"
    assert second.err == ""  # --json prints no progress

    forced = flights("train", "--force", "--json").json()
    assert {s["step"]: s["outcome"] for s in forced["steps"]}["train"] == "ran"


def test_train_needs_entry_points(keel: Keel) -> None:
    assert keel("init").code == 0
    result = keel("train", "--json")
    assert result.code == 2
    problems = {p["key"] for p in result.json()["error"]["problems"]}
    assert {"data", "features", "training"} <= problems


def test_bad_as_of_is_a_usage_error(flights: Keel) -> None:
    result = flights("train", "--as-of", "yesterday")
    assert result.code == 2
    assert "--as-of" in result.err


def test_lineage_prints_the_whole_chain(flights: Keel) -> None:
    trained = flights("train", "--as-of", "2014-01-01T06:00:00Z", "--json").json()
    assert trained["model"] == {"name": "flights-delay", "version": 1}
    chain = flights("lineage", "flights-delay@1", "--json")
    assert chain.code == 0, chain.err
    document = chain.json()
    assert document["model"]["aliases"] == ["candidate"]
    assert document["run"]["id"] == trained["run"]
    assert document["dataset"]["id"] == trained["dataset"]
    assert document["code"]["features"]["entry_point"] == "features:build"
    assert document["environment"]["python"].startswith("CPython 3.")
    assert [s["step"] for s in document["run"]["steps"]] == ["features", "train", "evaluate"]
    text = flights("lineage", "flights-delay@candidate")
    for label in ("model", "run", "dataset", "code", "environment"):
        assert f"\n{label}" in f"\n{text.out}"
    assert flights("lineage", "flights-delay@9").code == 3
    assert flights("lineage", "Not A Ref").code == 2


def test_reproduce_rebuilds_the_same_metrics(flights: Keel, tmp_path: Path) -> None:
    assert flights("train", "--as-of", "2014-01-01T06:00:00Z").code == 0
    result = flights("reproduce", "flights-delay@1", "--json")
    assert result.code == 0, result.out + result.err
    report = result.json()
    assert report["metrics_match"] is True
    assert report["environment_differences"] == []
    assert report["code_source"].startswith("the working tree")
    for values in report["metrics"].values():
        assert values["recorded"] == values["reproduced"]
    # Changed code and no git commit to go back to: refused, nothing guessed.
    (tmp_path / "train.py").write_text((tmp_path / "train.py").read_text() + "\n# edited\n")
    refused = flights("reproduce", "flights-delay@1")
    assert refused.code == 4
    assert "no git commit" in refused.err


def test_reproduce_from_the_recorded_git_commit(flights: Keel, tmp_path: Path) -> None:
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.email=ana@example.com", "-c", "user.name=ana", "add", "-A")
    git("-c", "user.email=ana@example.com", "-c", "user.name=ana", "commit", "-qm", "model")
    trained = flights("train", "--as-of", "2014-01-01T06:00:00Z", "--json").json()
    assert trained["model"]["version"] == 1
    (tmp_path / "train.py").write_text((tmp_path / "train.py").read_text() + "\n# later edit\n")
    result = flights("reproduce", "flights-delay@1", "--json")
    assert result.code == 0, result.out + result.err
    assert result.json()["code_source"].startswith("git commit")
    assert result.json()["metrics_match"] is True


def test_progress_bar_line() -> None:
    from keel.cli.commands.train import bar_line

    assert bar_line(0, 6, "snapshot", 0.0, width=12) == "[------------] 0/6  snapshot     0.0s"
    assert bar_line(3, 6, "train", 12.34, width=12) == "[######------] 3/6  train       12.3s"
    assert bar_line(6, 6, "register", 1.0, width=12).startswith("[############] 6/6")


def test_historical_data_is_told_to_train_as_of_its_time(flights: Keel, tmp_path: Path) -> None:
    # A contract inferred from a public table of 2013 holds a freshness rule the data breaks
    # today: infer says so at once, and train's refusal gives the command that works.
    inferred = flights("contract", "infer", "raw.parquet", "-o", "contracts/raw.yaml")
    assert inferred.code == 0, inferred.err
    assert "stale today" in inferred.out
    spec = (tmp_path / "keel.yaml").read_text()
    (tmp_path / "keel.yaml").write_text(
        spec.replace("  target: late\n", "  target: late\n  contract: contracts/raw.yaml\n")
    )
    refused = flights("train")
    assert refused.code == 1
    assert "stale on time_hour" in refused.err
    [command] = [
        line.split("`")[1] for line in refused.err.splitlines() if line.startswith("hint:")
    ]
    assert command.startswith("keel train --as-of 201")
    hinted = flights(*command.split()[1:])
    assert hinted.code == 0, hinted.err
