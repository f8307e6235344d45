"""`keel init --example flights` writes a project that trains as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Keel


@pytest.mark.slow  # trains the flights example: ~10 s
def test_example_project_trains_end_to_end(keel: Keel, tmp_path: Path) -> None:
    created = keel("init", "--example", "flights", "demo", "--json")
    assert created.code == 0, created.err
    project = tmp_path / "demo"
    assert sorted(p.name for p in (project / "data" / "raw").iterdir()) == [
        f"2013-{month:02d}.parquet" for month in range(1, 7)
    ]
    assert (project / "contracts" / "raw.yaml").is_file()
    assert "data/README.md" in (project / "README.md").read_text()

    trained = keel("-C", project, "train", "--as-of", "2013-07-01T00:00:00Z", "--json")
    assert trained.code == 0, trained.out + trained.err
    document = trained.json()
    assert document["model"] == {"name": "flights-delay", "version": 1}
    assert document["metrics"]["roc_auc"] > 0.68
    outcomes = {step["step"]: step["outcome"] for step in document["steps"]}
    assert outcomes["contract"] == "ran"

    again = keel("-C", project, "train", "--as-of", "2013-07-01T00:00:00Z", "--json").json()
    outcomes = {step["step"]: step["outcome"] for step in again["steps"]}
    assert outcomes == {
        "snapshot": "cache_hit",
        "contract": "cache_hit",
        "features": "cache_hit",
        "train": "cache_hit",
        "evaluate": "cache_hit",
        "register": "skipped",
    }
    assert again["model"] is None and again["metrics"] == document["metrics"]

    stale = keel("-C", project, "train", "--json")  # today, 2013 data is stale
    assert stale.code == 1
    assert "stale" in stale.json()["error"]["message"]
    assert keel("init", "--example", "flights", "demo").code == 4  # never overwritten
