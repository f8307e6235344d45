"""`keel retrain`: triggers read from what monitoring stored; a challenger trained on the
newer data and judged against the champion on the newest labelled production rows; the
decision in the audit log before any release step; the release as the policy says.

The model is trained on January-April; September's flights are scored in production and
their labels arrive; the data source then catches up to August.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from keel.cli.main import main
from keel.contracts import infer_contract, write_contract
from keel.monitoring.feedback import ingest
from keel.monitoring.service import WindowPlan, monitor
from keel.pipeline.train import train
from keel.project import Project
from keel.retraining.service import compare_on_recent, retrain
from keel.retraining.triggers import evaluate_triggers
from keel.serving.batch import predict_batch
from tests.pipeline.test_train import EXAMPLE, _raw_sample

MODEL = "flights-delay"
ENV = {"KEEL_USER": "ana"}
SCORED = 1_500  # September flights scored in production


def _spec(**retraining: Any) -> dict[str, Any]:
    return {
        "name": MODEL,
        "owners": {"data": "dana", "training": "tom", "release": "rita", "monitoring": "mo"},
        "data": {
            "source": "raw.parquet",
            "timestamp": "time_hour",
            "target": "late",
            "contract": "contracts/raw.yaml",
        },
        "features": {"entry_point": "features:build"},
        "training": {"entry_point": "train:train", "params": {"max_iter": 60}, "seed": 7},
        "metrics": ["roc_auc"],
        "release": {"gates": [], "approvals": {"required": 1, "aliases": ["production"]}},
        "monitoring": {"min_rows": 100, "freshness": {"predictions": None, "data": False}},
        "retraining": {
            "triggers": {"performance": {"metric": "roc_auc", "below": 0.99}},
            **retraining,
        },
    }


def _write_spec(folder: Path, **retraining: Any) -> None:
    (folder / "keel.yaml").write_text(yaml.safe_dump(_spec(**retraining), sort_keys=False))


@dataclass
class Production:
    folder: Path
    everything: pa.Table
    scored: pa.Table  # prediction_id, the outputs, the inputs (predict-batch's output)
    labels: pa.Table  # prediction_id, label


def _until(table: pa.Table, month: int) -> pa.Table:
    return table.filter(pc.less_equal(table["month"], month))


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    folder = tmp_path_factory.mktemp("retrain") / "flights"
    Project.init(folder, env=ENV).close()
    for name in ("features.py", "train.py"):
        shutil.copy(EXAMPLE / "project" / name, folder / name)
    everything = _raw_sample(40_000)
    training = _until(everything, 4)
    pq.write_table(training, folder / "raw.parquet")
    write_contract(
        infer_contract(training, timestamp="time_hour", source="raw.parquet"),
        folder / "contracts" / "raw.yaml",
    )
    _write_spec(folder)
    september = everything.filter(pc.equal(everything["month"], 9))
    spread = np.linspace(0, september.num_rows - 1, SCORED).astype(int)
    september = september.take(pa.array(spread))
    pq.write_table(september.drop(["late"]), folder.parent / "september.parquet")
    with Project.open(folder, env=ENV) as project:
        as_of = pc.max(training["time_hour"]).as_py() + timedelta(hours=1)
        v1 = train(project, as_of=as_of).registered
        assert v1 is not None
        project.metadata.releases.move_alias(
            MODEL, "production", 1, expected_holder=None, actor="ana", reason="first release"
        )
        predict_batch(
            project,
            folder.parent / "september.parquet",
            folder.parent / "scored.parquet",
            f"{MODEL}@production",
        )
        scored = pq.read_table(folder.parent / "scored.parquet")
        labels = pa.table({"prediction_id": scored["prediction_id"], "label": september["late"]})
        ingest(project, labels, model=MODEL, actor="labeller")
        monitor(project, plan=WindowPlan(rows=SCORED), windows=1, actor="monitor")
    # The data source catches up: January-August; its owner reviews the contract for the
    # new months (the one inferred on January-April refuses months 5-8 and the row count).
    caught_up = _until(everything, 8)
    pq.write_table(caught_up, folder / "raw.parquet")
    write_contract(
        infer_contract(caught_up, timestamp="time_hour", source="raw.parquet"),
        folder / "contracts" / "raw.yaml",
    )
    yield Production(folder, everything, scored, labels)


def _copy(production: Production, tmp_path: Path, **retraining: Any) -> Path:
    folder = tmp_path / "flights"
    shutil.copytree(production.folder, folder)
    _write_spec(folder, **retraining)
    return folder


def _as_of(production: Production) -> Any:
    return pc.max(_until(production.everything, 8)["time_hour"]).as_py() + timedelta(hours=1)


def test_the_performance_trigger_reads_the_monitored_window(production: Production) -> None:
    with Project.open(production.folder, env=ENV) as project:
        [trigger] = evaluate_triggers(project, MODEL)
    scores = production.scored["probability"].to_numpy()
    expected = roc_auc_score(production.labels["label"].to_numpy(), scores)
    assert trigger.name == "performance" and trigger.fired
    assert trigger.value == pytest.approx(expected, rel=1e-12)
    assert trigger.evidence["labelled"] == SCORED


def test_nothing_happens_when_no_trigger_fired(production: Production, tmp_path: Path) -> None:
    folder = _copy(
        production, tmp_path, triggers={"performance": {"metric": "roc_auc", "below": 0.1}}
    )
    with Project.open(folder, env=ENV) as project:
        head = project.metadata.audit.head()
        outcome = retrain(project, if_triggered=True)
        assert outcome.decision == "not-triggered" and not outcome.fired
        assert project.metadata.audit.head() == head  # nothing recorded, nothing trained
        assert [v.version for v in project.metadata.models.versions(MODEL)] == [1]


def test_a_challenger_is_judged_on_the_newest_labelled_rows_and_released_for_approval(
    production: Production, tmp_path: Path
) -> None:
    folder = _copy(production, tmp_path, min_improvement=-1.0)  # any challenger is released
    with Project.open(folder, env=ENV) as project:
        outcome = retrain(project, if_triggered=True, as_of=_as_of(production))
        assert [t.name for t in outcome.fired] == ["performance"]
        assert outcome.challenger == 2
        # Trained on the newer data: January-August.
        runs = project.metadata.runs
        first = runs.get(project.metadata.models.get(MODEL, 1).run_id)
        second = runs.get(project.metadata.models.get(MODEL, 2).run_id)
        assert second.dataset is not None and second.dataset != first.dataset
        assert project.metadata.datasets.get(second.dataset).rows > (
            project.metadata.datasets.get(first.dataset).rows
        )
        # Both models scored on September's labelled rows, each with its own features.
        comparison = outcome.comparison
        assert comparison is not None and comparison.rows == SCORED
        truth = production.labels["label"].to_numpy()
        assert comparison.champion_value == pytest.approx(
            roc_auc_score(truth, production.scored["probability"].to_numpy()), rel=1e-9
        )
        # Approval required for production: the request is open, the champion still serves.
        assert outcome.decision == "pending" and outcome.release is not None
        assert outcome.release.request is not None
        assert project.metadata.releases.holder(MODEL, "production") == 1
        # The decision is in the audit log, with its evidence, before the request.
        kinds = [e.kind for e in project.metadata.audit.events(after=0)]
        assert kinds.index("retraining.decided") < kinds.index("release.requested")
        [decided] = project.metadata.audit.events(kinds=["retraining.decided"])
        assert decided.version == 2
        assert decided.evidence["comparison"]["challenger"]["version"] == 2
        assert decided.evidence["triggers"][0]["fired"] is True
        assert project.metadata.audit.verify().ok


def test_a_challenger_that_is_not_better_enough_is_kept_back(
    production: Production, tmp_path: Path
) -> None:
    folder = _copy(production, tmp_path, min_improvement=1.0)  # no model improves AUC by 1
    with Project.open(folder, env=ENV) as project:
        outcome = retrain(project, if_triggered=True, as_of=_as_of(production))
        assert outcome.decision == "kept-champion" and outcome.release is None
        assert outcome.comparison is not None and not outcome.comparison.passed
        assert project.metadata.releases.holder(MODEL, "production") == 1
        assert project.metadata.releases.holder(MODEL, "canary") is None
        assert not project.metadata.audit.events(kinds=["release.requested"])
        [decided] = project.metadata.audit.events(kinds=["retraining.decided"])
        assert decided.evidence["decision"] == "kept-champion"


def test_the_canary_policy_puts_the_challenger_on_canary(
    production: Production, tmp_path: Path
) -> None:
    folder = _copy(production, tmp_path, min_improvement=-1.0, promotion="canary")
    with Project.open(folder, env=ENV) as project:
        outcome = retrain(project, if_triggered=True, as_of=_as_of(production))
        assert outcome.decision == "canary"
        assert project.metadata.releases.holder(MODEL, "canary") == 2
        assert project.metadata.releases.holder(MODEL, "production") == 1


def test_compare_on_recent_agrees_with_scoring_by_hand(production: Production) -> None:
    with Project.open(production.folder, env=ENV) as project:
        v1 = project.metadata.models.get(MODEL, 1)
        same = compare_on_recent(project, v1, v1)
    assert same is not None and same.improvement == 0.0 and same.rows == SCORED


def test_keel_retrain_prints_the_decision_and_exits_8_while_approval_is_pending(
    production: Production,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = _copy(production, tmp_path, min_improvement=-1.0)
    monkeypatch.setenv("KEEL_USER", "ana")
    code = main(
        ["-C", str(folder), "retrain", "--if-triggered", "--as-of", _as_of(production).isoformat()]
    )
    output = capsys.readouterr().out
    assert code == 8, output
    assert "FIRED performance" in output and "keel approve" in output


def test_keel_watch_once_monitors_and_retrains_when_triggered(
    production: Production,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    folder = _copy(production, tmp_path, min_improvement=-1.0, promotion="canary")
    monkeypatch.setenv("KEEL_USER", "ana")
    code = main(
        [
            "-C",
            str(folder),
            "watch",
            "--once",
            "--json",
            "--as-of",
            _as_of(production).isoformat(),
        ]
    )
    document = json.loads(capsys.readouterr().out)
    assert code == 0, document
    [done] = document["passes"]
    assert done["monitor"]["windows"] >= 1
    assert done["retrain"]["decision"] == "canary" and done["retrain"]["challenger"] == 2
    with Project.open(folder, env=ENV) as project:
        assert project.metadata.releases.holder(MODEL, "canary") == 2
        [decided] = project.metadata.audit.events(kinds=["retraining.decided"])
        assert decided.actor == "keel-watch"


def test_the_training_window_trains_the_challenger_on_the_newest_rows_only(
    production: Production, tmp_path: Path
) -> None:
    folder = _copy(production, tmp_path, min_improvement=-1.0, training_window="62d")
    with Project.open(folder, env=ENV) as project:
        outcome = retrain(project, if_triggered=True, as_of=_as_of(production))
        assert outcome.challenger == 2
        tags = project.metadata.runs.tags(project.metadata.models.get(MODEL, 2).run_id)
    caught_up = _until(production.everything, 8)
    newest = pc.max(caught_up["time_hour"]).as_py()
    inside = pc.sum(pc.greater_equal(caught_up["time_hour"], newest - timedelta(days=62))).as_py()
    assert int(tags["split.excluded_rows"]) == caught_up.num_rows - inside
    assert int(tags["split.train_rows"]) + int(tags["split.holdout_rows"]) == inside
