"""The scorecard of a project whose data has no time column (`tests/monitoring/untimed.py`),
on SQLite and PostgreSQL: freshness is judged on what the data can have (the source's own
time), the scorecard never asks for a timestamp rule it cannot have, and the project reaches
level 4 once it is operated."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from keel.domain.identity import Actor
from keel.maturity import scorecard
from keel.monitoring.service import monitor
from keel.pipeline.train import train
from keel.project import Project
from keel.release.service import approve, promote
from keel.serving.batch import predict_batch
from tests.fixtures.untimed import UntimedProject
from tests.monitoring.untimed import MODEL, spec, write_spec

OWNERS = {"data": "dana", "training": "tom", "release": "rita", "monitoring": "mo"}
GATES = [
    {"type": "contract_passed"},
    {"type": "metric_threshold", "metric": "roc_auc", "min": 0.5},
]
RULES = [{"name": "feature-drift", "signal": "drift", "subject": "inputs.*", "owner": "data"}]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"KEEL_USER": "ana"}
    if request.param == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    return env


def _operated(data_freshness: object) -> dict[str, Any]:
    document = spec(freshness={"data": data_freshness, "predictions": "1h"}, alerts=RULES)
    document["owners"] = OWNERS
    document["data"]["entity_key"] = ["id"]
    document["release"] = {"gates": GATES, "approvals": {"required": 1}}
    document["retraining"] = {"triggers": {"performance": {"metric": "roc_auc", "below": 0.55}}}
    document["training"]["params"] = {"max_iter": 30}
    return document


def _git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=ana", "-c", "user.email=ana@example.org", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )


def test_data_without_a_time_column_reaches_level_4_on_the_sources_freshness(
    env: dict[str, str], untimed_project: UntimedProject, tmp_path: Path
) -> None:
    folder = untimed_project(tmp_path / "untimed", env)
    with Project.open(folder, env=env) as project:
        item = scorecard(project).item("data.freshness")
    # `data: true` (the default) with no time column: measured, but held to no limit.
    assert item.status == "partial"
    assert item.evidence == "predictions at most 1h apart"
    assert item.fix is not None and "monitoring.freshness.data: <how old" in item.fix
    assert "timestamp rule" not in item.fix and "--timestamp" not in item.fix

    # Operated: owners, gates and approvals, committed code, serving, monitoring, triggers,
    # skew on the row id, and the source held to two days.
    write_spec(folder, _operated("2d"))
    (folder / ".gitignore").write_text(".keel/\n__pycache__/\nrequests*\n")
    _git(folder, "init", "-q")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-q", "-m", "untimed")
    ana, ben = Actor("ana", frozenset(), via="test"), Actor("ben", frozenset(), via="test")
    with Project.open(folder, env=env) as project:
        trained = train(project)
        assert trained.registered is not None and trained.registered.version == 2
        asked = promote(project, f"{MODEL}@2", "production", actor=ana)
        assert asked.outcome == "pending" and asked.request is not None
        assert approve(project, asked.request.id, actor=ben).outcome == "approved"
        requests = pcsv.read_csv(folder / "raw.csv").slice(0, 400).drop(["late"])
        pq.write_table(requests, folder / "requests.parquet")
        predict_batch(
            project,
            folder / "requests.parquet",
            folder / "requests-scored.parquet",
            f"{MODEL}@production",
        )
        monitor(project)
        card = scorecard(project)
    assert {i.key: i.status for i in card.items if i.status != "pass"} == {}
    assert (card.level, card.level_name) == (4, "operated")
    assert card.item("data.freshness").evidence == (
        "data: at most 2d old by the source file's modification time (the data has no time "
        "column); predictions at most 1h apart"
    )
