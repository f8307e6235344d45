"""The flights model in production: trained on January-April, served on a real server, and
sent May-December month by month, with the labels arriving afterwards as feedback.

What the data shows (and `docs/monitoring.md` records): the reference is the holdout of
the training months (late March-April). From May on, `month` lies outside anything the
model saw (out of range, drift); summer months move the weather (temperature, dew point,
humidity drift); the share of late flights and the model's scores move with the season,
and the AUC over the joined labels drops in the later months. A broken weather feed
(nulls in `wind_speed` in one month) raises the null-rate alert on exactly that feature;
a silent hour raises the freshness alert, and traffic resuming resolves it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from keel.contracts import infer_contract, write_contract
from keel.monitoring.service import WindowPlan, monitor
from keel.pipeline.train import train
from keel.project import Project
from tests.pipeline.test_train import EXAMPLE, _raw_sample
from tests.serving.support import Client, serve
from tests.test_events import Receiver

MODEL = "flights-delay"
ENV = {"KEEL_USER": "ana"}
ROWS_PER_MONTH = 800
REPLAYED = range(5, 13)
NULL_MONTH = 12  # the month whose weather feed loses wind_speed for a third of the rows
NULL_SHARE = 1 / 3
AUC_FLOOR = 0.65  # retraining.triggers.performance.below: the performance alert's limit


def _spec(**monitoring: Any) -> dict[str, Any]:
    return {
        "name": MODEL,
        "owners": {"data": "dana", "training": "tom", "release": "rita", "monitoring": "mo"},
        "data": {
            "source": "raw.parquet",
            "timestamp": "time_hour",
            "target": "late",
            "contract": "contracts/raw.yaml",
            "entity_key": ["carrier", "flight", "time_hour"],
        },
        "features": {"entry_point": "features:build"},
        "training": {"entry_point": "train:train", "params": {"max_iter": 60}, "seed": 7},
        "metrics": ["roc_auc", "log_loss"],
        "monitoring": {"min_rows": 100, "freshness": {"predictions": "1h"}, **monitoring},
        "retraining": {"triggers": {"performance": {"metric": "roc_auc", "below": AUC_FLOOR}}},
        # The replayed months are outside the contract inferred from January-April (month 5
        # is no month it saw): answered, so that monitoring sees the drift.
        "serving": {"input_contract": "warn"},
    }


@dataclass
class Replay:
    folder: Path
    sent: dict[int, list[str]]  # month -> prediction ids, in order
    labels: dict[str, int]
    last_prediction: datetime
    natural_nulls: dict[str, float]  # NULL_MONTH's null share per input, before the break
    sent_nulls: dict[str, float]  # ... and as sent
    runs: dict[int, Any]  # month -> the MonitorReport of the run after its labels arrived
    everything: pa.Table  # the year's raw rows (what the data source holds once it lands)


def _records(table: pa.Table) -> list[dict[str, Any]]:
    rows = table.drop(["late"]).to_pylist()
    for row in rows:
        row["time_hour"] = row["time_hour"].isoformat()
    return rows


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    from keel.monitoring.feedback import ingest

    folder = tmp_path_factory.mktemp("replay") / "flights"
    Project.init(folder, env=ENV).close()
    for name in ("features.py", "train.py"):
        shutil.copy(EXAMPLE / "project" / name, folder / name)
    everything = _raw_sample(40_000)
    months = everything["month"]  # the local month (time_hour is UTC)
    training = everything.filter(pa.compute.less_equal(months, 4))
    pq.write_table(training, folder / "raw.parquet")
    write_contract(
        infer_contract(training, timestamp="time_hour", source="raw.parquet"),
        folder / "contracts" / "raw.yaml",
    )
    (folder / "keel.yaml").write_text(yaml.safe_dump(_spec(), sort_keys=False))
    sent: dict[int, list[str]] = {}
    labels: dict[str, int] = {}
    runs: dict[int, Any] = {}
    rng = np.random.default_rng(3)
    with Project.open(folder, env=ENV) as project:
        as_of = pa.compute.max(training["time_hour"]).as_py() + timedelta(hours=1)
        version = train(project, as_of=as_of).registered
        assert version is not None
        releases = project.metadata.releases
        releases.move_alias(
            MODEL, "production", version.version, expected_holder=None, actor="ana", reason="test"
        )
        with serve(project) as (url, serving), Client(url) as client:
            for month in REPLAYED:
                whole = everything.filter(pa.compute.equal(months, month))
                # Spread over the month, in time order, as its traffic would be.
                spread = np.linspace(0, whole.num_rows - 1, ROWS_PER_MONTH).astype(int)
                rows = whole.take(pa.array(spread))
                records = _records(rows)
                if month == NULL_MONTH:
                    natural = _null_shares(records)
                    for index in rng.choice(len(records), int(len(records) * NULL_SHARE), False):
                        records[index]["wind_speed"] = None
                    sent_nulls = _null_shares(records)
                ids: list[str] = []
                for start in range(0, len(records), 200):
                    answer = client.post("/predict", {"records": records[start : start + 200]})
                    assert answer.status == 200, answer.text
                    ids.extend(p["id"] for p in answer.json()["predictions"])
                sent[month] = ids
                truth = rows["late"].to_pylist()
                labels.update(zip(ids, truth, strict=True))
                serving.log.flush()
                # The month's arrivals come in, then the scheduled monitoring run.
                feedback = pa.table({"prediction_id": ids, "label": truth})
                ingest(project, feedback, model=MODEL, actor="labeller")
                runs[month] = monitor(
                    project,
                    plan=WindowPlan(rows=ROWS_PER_MONTH),
                    windows=len(sent),
                    now=datetime.now(UTC),
                    actor="monitor",
                )
        last = datetime.now(UTC)
    yield Replay(folder, sent, labels, last, natural, sent_nulls, runs, everything)


def _null_shares(records: list[dict[str, Any]]) -> dict[str, float]:
    return {name: sum(r[name] is None for r in records) / len(records) for name in records[0]}


def _monthly(replay: Replay, **options: Any) -> Any:
    with Project.open(replay.folder, env=ENV) as project:
        return monitor(
            project,
            plan=WindowPlan(rows=ROWS_PER_MONTH),
            windows=len(REPLAYED),
            now=replay.last_prediction + timedelta(minutes=5),
            **options,
        )


def test_each_month_is_a_window_with_its_performance_equal_to_sklearns(replay: Replay) -> None:
    report = _monthly(replay, record=False)
    assert [w.rows for w in report.windows] == [ROWS_PER_MONTH] * len(REPLAYED)
    with Project.open(replay.folder, env=ENV) as project:
        for month, window in zip(REPLAYED, report.windows, strict=True):
            ids = replay.sent[month]
            logged = {row["id"]: row["outputs.probability"] for row in _window_rows(project, ids)}
            truth = [replay.labels[i] for i in ids]
            expected = roc_auc_score(truth, [logged[i] for i in ids])
            assert window.metric == "roc_auc" and window.labelled == len(ids)
            assert window.coverage == 1.0
            assert window.performance == pytest.approx(expected, rel=1e-12), month


def _window_rows(project: Project, ids: list[str]) -> list[dict[str, Any]]:
    from keel.predlog.read import get

    rows = []
    for prediction_id in ids:
        logged = get(project, prediction_id)
        assert logged is not None
        rows.append({"id": prediction_id, "outputs.probability": logged.outputs["probability"]})
    return rows


def test_later_months_raise_the_drift_and_performance_alerts_the_data_shows(
    replay: Replay,
) -> None:
    runs = replay.runs
    opened = {m: {(a.rule, a.subject): a for a in run.opened} for m, run in runs.items()}
    is_open = {m: {(a.rule, a.subject) for a in run.open_alerts} for m, run in runs.items()}
    # May: `month` lies outside everything the model saw; the data owner is told.
    month_drift = opened[5][("feature-drift", "inputs.month")]
    assert month_drift.owner == "dana" and month_drift.severity == "warning"
    assert all(("feature-drift", "inputs.month") in is_open[m] for m in REPLAYED)
    # The summer moves the weather away from January-April.
    assert any(("feature-drift", "inputs.temp") in opened[m] for m in (5, 6, 7))
    assert ("feature-drift", "inputs.temp") in is_open[7]
    assert ("score-drift", "outputs.probability") in is_open[7]
    # Performance: open exactly after the months whose AUC (sklearn's, on the joined
    # labels) is below the floor, resolved when it recovers.
    auc = {m: run.windows[-1].performance for m, run in runs.items()}
    weak = {m for m, value in auc.items() if value is not None and value < AUC_FLOOR}
    assert weak, f"the data shows months below {AUC_FLOOR}: {auc}"
    for month in REPLAYED:
        assert (("performance", "roc_auc") in is_open[month]) == (month in weak), (month, auc)
    first = min(weak)
    alert = opened[first][("performance", "roc_auc")]
    assert alert.owner == "tom" and alert.severity == "critical"
    assert alert.threshold == AUC_FLOOR and alert.value == pytest.approx(auc[first])
    # Every opening and resolution is in the audit log, which still verifies.
    with Project.open(replay.folder, env=ENV) as project:
        events = project.metadata.audit.events(kinds=["alert.opened", "alert.resolved"])
        logged = {(e.kind, e.subject) for e in events}
        assert project.metadata.audit.verify().ok
    for run in runs.values():
        assert {("alert.opened", a.id) for a in run.opened} <= logged
        assert {("alert.resolved", a.id) for a in run.resolved} <= logged


def test_nulls_injected_into_one_feature_raise_a_null_rate_alert_on_it(replay: Replay) -> None:
    report = _monthly(replay, record=False)
    window = dict(zip(REPLAYED, report.windows, strict=True))[NULL_MONTH]
    reference = {
        n.removeprefix("inputs."): c.null_rate for n, c in report.reference.columns.items()
    }
    changes = {
        s.subject.removeprefix("inputs."): s for s in window.signals if s.name == "null_rate_change"
    }
    # Without the broken feed, wind_speed would stay within the tolerance: the break is
    # what the alert sees, measured exactly.
    assert replay.natural_nulls["wind_speed"] - reference["wind_speed"] < 0.05
    wind = changes["wind_speed"]
    assert wind.breached
    assert wind.value == pytest.approx(replay.sent_nulls["wind_speed"] - reference["wind_speed"])
    # Every other input breaches exactly when its real null rate moved by more than 0.05
    # (in December: wind_gust and pressure, whose sensors report less in winter).
    expected = {
        name
        for name, share in replay.natural_nulls.items()
        if name in changes and name != "wind_speed" and share - reference[name] > 0.05
    }
    assert {n for n, s in changes.items() if s.breached} == expected | {"wind_speed"}
    # The broken month is the newest: the run that records raises the alert, the data owner's.
    recorded = _monthly(replay)
    alerts = {(a.rule, a.subject): a for a in recorded.open_alerts}
    alert = alerts[("null-rate", "inputs.wind_speed")]
    assert alert.owner == "dana" and alert.severity == "warning"
    assert "null_rate_change of inputs.wind_speed" in alert.message


def test_stopped_traffic_raises_a_freshness_alert_delivered_by_webhook_and_resolved(
    replay: Replay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    folder = tmp_path / "flights"
    shutil.copytree(replay.folder, folder)
    silent = replay.last_prediction + timedelta(hours=2)
    receiver = Receiver()
    try:
        with Project.open(folder, env=ENV) as project:
            _, receiver.secret = project.metadata.webhooks.add(
                receiver.url, events=["alert.opened", "alert.resolved"], actor="ana"
            )
            report = monitor(project, plan=WindowPlan(rows=ROWS_PER_MONTH), now=silent)
            stale = [a for a in report.opened if a.rule == "predictions-stopped"]
            assert len(stale) == 1 and stale[0].severity == "critical"
            assert stale[0].owner == "mo" and "prediction_age" in stale[0].message
            # The owner's webhook got it, signed.
            delivered = [r.json() for r in receiver.received if r.signature_ok]
            assert any(
                d["kind"] == "alert.opened" and d["subject"] == stale[0].id for d in delivered
            ), delivered
            # Still silent: the same alert, not a second one.
            again = monitor(project, plan=WindowPlan(rows=ROWS_PER_MONTH), now=silent)
            assert not [a for a in again.opened if a.rule == "predictions-stopped"]
            # Traffic again: resolved, and delivered too.
            resumed = monitor(
                project, plan=WindowPlan(rows=ROWS_PER_MONTH), now=replay.last_prediction
            )
            assert [a.id for a in resumed.resolved if a.rule == "predictions-stopped"] == [
                stale[0].id
            ]
            delivered = [r.json() for r in receiver.received if r.signature_ok]
            assert any(
                d["kind"] == "alert.resolved" and d["subject"] == stale[0].id for d in delivered
            )
    finally:
        receiver.stop()


def test_the_broken_feed_is_row_skew_on_exactly_that_feature_once_the_source_lands(
    replay: Replay, tmp_path: Path
) -> None:
    # The data source catches up with the year; recomputing December's features offline
    # from it shows where serving saw something else: wind_speed, nulled in a third of
    # the requests. Every other feature matches row for row.
    folder = tmp_path / "flights"
    shutil.copytree(replay.folder, folder)
    pq.write_table(replay.everything, folder / "raw.parquet")
    with Project.open(folder, env=ENV) as project:
        project.snapshot()
        report = monitor(project, plan=WindowPlan(rows=ROWS_PER_MONTH), now=replay.last_prediction)
    december = report.windows[-1]
    skew = {s.subject: s for s in december.signals if s.name == "row_skew"}
    assert skew, "no row skew measured"
    broken = replay.sent_nulls["wind_speed"] - replay.natural_nulls["wind_speed"]
    assert skew["wind_speed"].value == pytest.approx(broken, abs=1e-9)
    assert {name for name, s in skew.items() if s.breached} == {"wind_speed"}
    alerts = {(a.rule, a.subject): a for a in report.open_alerts}
    assert alerts[("row-skew", "wind_speed")].owner == "dana"
