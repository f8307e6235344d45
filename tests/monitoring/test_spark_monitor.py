"""`keel monitor --engine spark` on real Spark, against the in-process engine on the same log,
on SQLite and PostgreSQL: a prediction log whose older days are compacted into Parquet
segments (read by Spark from the artifact store, several partitions) and whose newest rows
are still in the metadata store (read in-process), with labels on both sides and values the
reference never saw. Local mode in this process, and a standalone cluster of two workers on
loopback; a Spark job that fails exits 10 and records nothing.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from keel.errors import ConfigError
from keel.monitoring.feedback import ingest
from keel.predlog.ids import new_prediction_id
from keel.predlog.log import PredictionBatch
from keel.predlog.read import compact
from keel.predlog.writer import StoredPredictionLog
from keel.project import Project
from keel.spec import EngineSpec
from tests.fixtures.cli import Keel
from tests.fixtures.spark import TEST_CONF, SparkCluster, failing_engine, with_engine
from tests.fixtures.untimed import UntimedProject
from tests.monitoring.untimed import MODEL, log_requests, raw_rows

pytestmark = [pytest.mark.spark, pytest.mark.slow]

KEEL = str(Path(sys.executable).with_name("keel"))
DAY = datetime(2026, 3, 1, tzinfo=UTC)
ROWS = [120, 110, 130, 100, 90]
NOW = DAY + timedelta(days=4, hours=12)
#: Days 0 to 2 are compacted (segments of 50 rows: several files, several partitions).
COMPACTED_BEFORE = DAY + timedelta(days=3)
#: Statistics of merged sketches against sketches merged otherwise: float rounding only.
CLOSE = {"rel": 1e-9, "abs": 1e-12}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"KEEL_USER": "ana"}
    if request.param == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    return env


@pytest.fixture
def logged(untimed_project: UntimedProject, env: dict[str, str], tmp_path: Path) -> Path:
    """The untimed project with five days of predictions, three of them compacted."""
    folder = untimed_project(tmp_path / "untimed", env, freshness={"predictions": None})
    raw = raw_rows()
    with Project.open(folder, env=env) as project:
        ids: list[str] = []
        for day, rows in enumerate(ROWS):
            ids += log_requests(project, DAY + timedelta(days=day, hours=9), rows, start=day * 150)
        _log_strangers(project, DAY + timedelta(days=1, hours=15), 40)
        _log_strangers(project, DAY + timedelta(days=4, hours=10), 30)
        report = compact(project, older_than=timedelta(0), now=COMPACTED_BEFORE, segment_rows=50)
        assert report.rows == sum(ROWS[:3]) + 40 and len(report.segments) > 3
        # Labels for every third prediction, compacted or not.
        late = [
            raw["late"][day * 150 + i].as_py() for day, rows in enumerate(ROWS) for i in range(rows)
        ]
        picked = list(range(0, len(ids), 3))
        ingest(
            project,
            pa.table(
                {"prediction_id": [ids[i] for i in picked], "label": [late[i] for i in picked]}
            ),
        )
        stats = project.metadata.predictions.stats()
        assert sum(s.rows for s in stats) == sum(ROWS[3:]) + 30
    return folder


def _log_strangers(project: Project, at: datetime, rows: int) -> None:
    """Requests from a carrier and airports the reference never saw, flying farther than
    any flight it had: unseen categories and out-of-range values."""
    ids = [new_prediction_id((at + timedelta(seconds=i)).timestamp()) for i in range(rows)]
    batch = PredictionBatch(
        ids=ids,
        at=at,
        model=MODEL,
        version=1,
        slot="production",
        inputs={
            "id": list(range(rows)),
            "carrier": ["ZZ"] * rows,
            "flight": [9_000 + i for i in range(rows)],
            "origin": ["XXX" if i % 2 else "EWR" for i in range(rows)],
            "dest": ["YYY"] * rows,
            "distance": [30_000.0 + i for i in range(rows)],
        },
        outputs={"prediction": [1] * rows, "probability": [0.75] * rows},
        latency_ms=1.0,
    )
    with StoredPredictionLog(project.metadata.predictions) as log:
        log.submit(batch)


def _same(ours: Any, theirs: Any, where: str = "") -> None:
    """Equal documents, floats to rounding (NaN equal to NaN)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and ours.keys() == theirs.keys(), where
        for key in theirs:
            if key != "generated_at":
                _same(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), where
        for index, (mine, expected) in enumerate(zip(ours, theirs, strict=True)):
            _same(mine, expected, f"{where}[{index}]")
    elif isinstance(theirs, float) and not isinstance(ours, bool):
        if math.isnan(theirs):
            assert isinstance(ours, float) and math.isnan(ours), where
        else:
            assert ours == pytest.approx(theirs, **CLOSE), where
    else:
        assert ours == theirs, where


def _in_process(folder: Path, env: dict[str, str]) -> dict[str, Any]:
    with Project.open(folder, env=env) as project:
        report = project.monitor(window="1d", now=NOW, record=False, engine="local")
    document = report.to_dict()
    assert [w["rows"] for w in document["windows"]] == [120, 150, 130, 100, 120]
    # What the comparison must cover: labelled windows, unseen and out-of-range counts.
    assert all(w["labelled"] for w in document["windows"])
    names = {s["signal"] for s in document["windows"][1]["signals"] if s["breached"]}
    assert {"unseen_categories", "out_of_range"} <= names, names
    return document


def test_monitor_on_spark_local_equals_in_process_and_records_the_same(
    logged: Path, env: dict[str, str], spark_local: str, keel: Keel, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _in_process(logged, env)
    spark = EngineSpec(kind="spark", master=spark_local, conf=TEST_CONF)
    with Project.open(logged, env=env) as project:
        report = project.monitor(window="1d", now=NOW, record=False, engine=spark)
        _same(report.to_dict(), expected)
        assert project.metadata.monitoring.alerts(model=MODEL) == []
        with pytest.raises(ConfigError, match="engine: expected local or spark, got 'dask'"):
            project.monitor(window="1d", now=NOW, record=False, engine="dask")
        # The segments span several partitions, so the driver merged windows' parts.
        paths = [
            f"file://{project.artifacts.path_of(s.digest)}"  # type: ignore[attr-defined]
            for s in project.metadata.predictions.segments(model=MODEL)
        ]
    assert _partitions(paths) > 1

    # The CLI, recording: the same signals stored and alerts opened as by the local engine.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KEEL_PROJECT", str(logged))
    ran = keel(
        "monitor", "--window", "1d", "--now", NOW.isoformat(), "--engine", "spark",
        "--spark-master", spark_local, "--json",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    recorded = ran.json()
    _same(recorded["windows"], expected["windows"])
    assert recorded["opened"], "the strangers' window opens alerts"
    with Project.open(logged, env=env) as project:
        opened = project.metadata.monitoring.alerts(model=MODEL, state="open")
        assert {a.signal for a in opened} >= {"unseen_categories", "out_of_range"}

    # Row-count windows need the log's order: refused on Spark, naming the option.
    refused = keel("monitor", "--window", "100", "--engine", "spark", "--json")
    assert refused.code == 2, refused.out + refused.err
    assert "--window" in refused.json()["error"]["message"]
    # A master without the Spark engine is a mistake, not ignored.
    stray = keel("monitor", "--spark-master", spark_local, "--dry-run")
    assert stray.code == 2 and "--spark-master" in stray.err and "--engine spark" in stray.err


def _partitions(paths: list[str]) -> int:
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    assert session is not None
    return int(session.read.parquet(*paths).rdd.getNumPartitions())


def _keel(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")} | env
    return subprocess.run(
        [KEEL, *map(str, args)], capture_output=True, text=True, env=environ, timeout=420
    )


def test_monitor_on_a_standalone_cluster_equals_in_process(
    logged: Path, env: dict[str, str], spark_cluster: SparkCluster
) -> None:
    expected = _in_process(logged, env)
    ran = _keel(
        "-C", logged, "monitor", "--window", "1d", "--now", NOW.isoformat(), "--dry-run",
        "--engine", "spark", "--spark-master", spark_cluster.master, "--json",
        env=env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    _same(json.loads(ran.stdout)["windows"], expected["windows"])


def test_a_failed_spark_job_exits_10_and_records_nothing(
    logged: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """Executors whose Python lacks keel: every partition's task fails."""
    with_engine(logged, failing_engine(tmp_path))
    with Project.open(logged, env=env) as project:
        head = project.metadata.audit.head()
    ran = _keel(
        "-C", logged, "monitor", "--window", "1d", "--now", NOW.isoformat(), "--json", env=env
    )

    assert ran.returncode == 10, ran.stdout + ran.stderr
    error = json.loads(ran.stdout)["error"]
    assert error["code"] == "engine_error"
    assert error["message"].startswith(f"the Spark job monitoring {MODEL}'s prediction log")
    assert "install keelml on every node" in error["hint"]
    with Project.open(logged, env=env) as project:
        assert project.metadata.audit.head() == head
        assert project.metadata.monitoring.alerts(model=MODEL) == []
        assert project.metadata.monitoring.window_ends(MODEL, limit=10) == []
