"""examples/orchestrated.py, run as an orchestrator would: a new version trained, the gates
deciding, a release request opened; then production monitored and the retraining policy
consulted. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from keel.project import Project
from tests.fixtures.trained import AS_OF, MODEL, TrainedOnPostgres, write_spec

pytestmark = pytest.mark.slow  # the example pipeline end to end: ~5 s a database

EXAMPLE = Path(__file__).parents[1] / "examples" / "orchestrated.py"
POLICY = {
    "gates": [{"type": "metric_threshold", "metric": "roc_auc", "min": 0.5}],
    "approvals": {"required": 1},
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A trained flights project (v1 in production, 400 predictions logged) and its env."""
    env = {"KEEL_USER": "ana"}
    if request.param == "sqlite":
        folder: Path = request.getfixturevalue("release_project")
    else:
        template: TrainedOnPostgres = request.getfixturevalue("trained_postgres_template")
        env["KEEL_DB_URL"] = request.getfixturevalue("trained_postgres_url")
        folder = tmp_path / "flights"
        shutil.copytree(template.folder, folder)
    write_spec(folder, POLICY)
    pq.write_table(pq.read_table(folder / "raw.parquet").slice(0, 400), folder / "in.parquet")
    with Project.open(folder, env=env) as opened:
        asked = opened.promote(f"{MODEL}@1", "production")
        assert asked.request is not None
        assert opened.approve(asked.request.id, actor="ben").outcome == "approved"
        opened.predict_batch(folder / "in.parquet", folder / "out.parquet", f"{MODEL}@production")
    return folder, env


def test_the_example_pipeline_runs_every_task(project: tuple[Path, dict[str, str]]) -> None:
    folder, env = project
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    ran = subprocess.run(
        [sys.executable, str(EXAMPLE), str(folder), "--as-of", AS_OF.isoformat()],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    steps = json.loads(ran.stdout)

    trained = steps["train"]
    assert trained["registered"] and trained["ref"].startswith(f"{MODEL}@")
    assert list(steps["gate"]["gates"].values()) == [True]  # the one gate passed
    assert steps["gate"]["outcome"] == "pending"
    monitored = steps["monitor"]
    assert monitored["reference"] == 1  # production's holder, until the request is approved
    assert sum(window["rows"] for window in monitored["windows"]) == 400
    assert steps["retrain"]["decision"] == "not-triggered"

    with Project.open(folder, env=env) as opened:
        version = opened.metadata.models.resolve(trained["ref"])
        assert opened.metadata.models.resolve(f"{MODEL}@candidate").version == version.version
        request = opened.metadata.releases.request(steps["gate"]["request"])
        assert request.status == "pending" and request.requested_by == "ana"
        assert (request.version, request.alias) == (version.version, "production")
        assert opened.metadata.releases.holder(MODEL, "production") == 1
