"""The whole lifecycle of each example project, through the CLI as a user runs it, on SQLite and
on PostgreSQL: init, snapshot, contract, train, reproduce, a promotion approved by a second
person, a real `keel serve` answering `/predict` and tritonclient, feedback, monitoring,
retraining onto canary, the canary promoted, a rollback, a served prediction explained, the
audit log verified and the maturity scorecard.

Each run is kept lean: two months of a few hundred rows each to train on, then a month of
traffic before retraining and one on canary, small models.
"""

from __future__ import annotations

import csv
import json
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from keel.models import load_package
from tests.acceptance.support import (
    DATABASES,
    Server,
    as_user,
    eventually,
    ok,
    request_records,
    serve,
    triton_infer,
)
from tests.fixtures.cli import Keel

#: Rows kept of each training month (enough for the models to learn something), and of each
#: month of traffic (a few monitoring windows of WINDOW rows).
ROWS_PER_MONTH = 1500
TRAFFIC_ROWS = 300
WINDOW = 100
#: Rows per request. The canary share is drawn per request: 30 requests a month make a month
#: that never reaches the canary, or production, vanishingly unlikely.
BATCH = 10


@dataclass(frozen=True)
class Example:
    model: str
    metric: str
    #: How far the canary may trail production on `metric` before its analysis rolls it back.
    #: The canary is judged here on about 150 labelled predictions, other requests than
    #: production's, where an AUC or an rmse varies that much between samples; rolling back a
    #: degraded canary is tested in tests/retraining/test_canary.py.
    canary_tolerance: float
    #: keel.yaml's metric_threshold gate for a model trained on two sampled months (the
    #: example's own threshold is for its full data).
    threshold: dict[str, float] = field(default_factory=dict)


EXAMPLES = {
    "flights": Example(
        model="flights-delay", metric="roc_auc", canary_tolerance=0.25, threshold={"min": 0.55}
    ),
    # An hour's rentals range from 1 to several hundred: rmse over the ~150 different hours
    # each slot answers differs by tens of rentals between samples.
    "bikeshare": Example(model="bike-rentals", metric="rmse", canary_tolerance=100),
}


def _month_after(month: str) -> datetime:
    year, number = (int(part) for part in month.split("-"))
    return datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _lean(folder: Path) -> tuple[list[str], dict[str, pa.Table]]:
    """Keep ROWS_PER_MONTH rows, spread over the month, of the first two months as the data
    source; TRAFFIC_ROWS of each of the next two months become traffic (kept aside, with
    their labels)."""
    raw = folder / "data" / "raw"
    files = sorted(raw.glob("*.parquet"))
    assert len(files) >= 4, files
    traffic: dict[str, pa.Table] = {}
    kept: list[str] = []
    for position, path in enumerate(files):
        if position >= 4:
            path.unlink()
            continue
        table = pq.read_table(path)
        rows = ROWS_PER_MONTH if position < 2 else TRAFFIC_ROWS
        sample = table.take(pa.array(np.linspace(0, table.num_rows - 1, rows).astype(int)))
        if position < 2:
            pq.write_table(sample, path)
            kept.append(path.stem)
        else:
            path.unlink()
            traffic[path.stem] = sample
    return kept, traffic


def _lean_policy(folder: Path, example: Example) -> dict[str, Any]:
    """The example's keel.yaml with small models, approvals by the approver role, and
    monitoring and canary sized for a few hundred requests."""
    path = folder / "keel.yaml"
    spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["training"]["params"]["max_iter"] = 30
    for gate in spec["release"]["gates"]:
        if gate["type"] == "metric_threshold":
            gate.update(example.threshold)
    spec["release"]["approvals"]["roles"] = ["approver"]
    spec.setdefault("monitoring", {})["min_rows"] = WINDOW // 2
    spec.setdefault("serving", {}).update({"canary_share": 0.5, "reload_interval": "200ms"})
    spec["retraining"]["canary"] = {
        "duration": "1h",
        "min_predictions": WINDOW // 2,
        # Latency on a busy, shared test machine says nothing about the model: not judged.
        "rollback": {
            "min_performance_delta": -example.canary_tolerance,
            "max_latency_ratio": 1000.0,
        },
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return spec


def _git(folder: Path, *args: str) -> None:
    identity = ["-c", "user.name=Ana", "-c", "user.email=ana@example.org"]
    subprocess.run(["git", *identity, *args], cwd=folder, check=True, capture_output=True)


def _commit(folder: Path, message: str) -> None:
    """Commit the code, keel.yaml and the contract, as the project's users do (the data is
    versioned by keel's snapshots, and stays out of git)."""
    ignored = folder / ".gitignore"
    if "data/" not in ignored.read_text(encoding="utf-8").split():
        with ignored.open("a", encoding="utf-8") as out:
            out.write("data/\n")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-q", "-m", message)


def _labels(
    server: Server, table: pa.Table, target: str, left_out: tuple[str, ...]
) -> tuple[list[dict[str, Any]], list[str], list[Any]]:
    """Send `table`'s rows, less `left_out` columns, to `/predict` in batches; the answers,
    their ids and the labels."""
    records = request_records(table, drop=left_out)
    answers: list[dict[str, Any]] = []
    for start in range(0, len(records), BATCH):
        answer = server.post("/predict", {"records": records[start : start + BATCH]})
        for prediction in answer["predictions"]:
            answers.append({**prediction, "version": answer["version"], "slot": answer["slot"]})
    ids = [a["id"] for a in answers]
    assert len(set(ids)) == len(records)
    return answers, ids, table[target].to_pylist()


def _feedback(keel: Keel, where: Path, ids: list[str], labels: list[Any]) -> dict[str, Any]:
    """`keel feedback FILE`, once the server's prediction log has committed the predictions."""
    path = where / f"labels-{ids[0]}.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["prediction_id", "label"])
        writer.writerows(zip(ids, labels, strict=True))

    def recorded() -> dict[str, Any] | None:
        result = keel("feedback", path, "--json")
        return result.json() if result.code == 0 else None

    return eventually(recorded, timeout=20)


@pytest.mark.slow
@pytest.mark.parametrize("database", DATABASES, indirect=True)
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_whole_lifecycle(
    name: str,
    database: str,
    keel: Keel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = EXAMPLES[name]
    model = example.model

    # -- init, data, contract ---------------------------------------------------------------
    ok(keel("init", "--example", name, "project"))
    folder = tmp_path / "project"
    monkeypatch.chdir(folder)
    kept, traffic = _lean(folder)
    spec = _lean_policy(folder, example)
    target, timestamp = spec["data"]["target"], spec["data"]["timestamp"]
    # Requests carry the model's inputs: not the target, nor what keel.yaml excludes.
    left_out = (target, *spec["data"].get("exclude", []))
    first, second = sorted(traffic)
    as_of = _iso(_month_after(kept[-1]))

    snapshot = ok(keel("data", "snapshot", "--json")).json()
    assert snapshot["version"]["rows"] == 2 * ROWS_PER_MONTH
    ok(keel("contract", "infer", "data/raw", "-o", "contracts/raw.yaml", "--timestamp", timestamp))
    ok(keel("contract", "check", "data/raw", "--now", as_of))
    _git(folder, "init", "-q")
    _commit(folder, f"the {name} example, lean")

    # -- train, reproduce -------------------------------------------------------------------
    trained = ok(keel("train", "--as-of", as_of, "--json")).json()
    assert trained["dataset"] == snapshot["version"]["id"]
    shown = ok(keel("models", "show", f"{model}@1", "--json")).json()["version"]
    assert shown["run_id"] == trained["run"] and example.metric in shown["metrics"]

    reproduced = ok(keel("reproduce", f"{model}@1", "--json")).json()
    assert reproduced["metrics_match"] is True, reproduced
    run = ok(keel("runs", "show", reproduced["new_run"], "--json")).json()["run"]
    [rebuilt] = [step["output"] for step in run["steps"] if step["step"] == "train"]
    ok(keel("artifacts", "get", shown["package"], tmp_path / "v1.keel"))
    ok(keel("artifacts", "get", rebuilt, tmp_path / "rebuilt.keel"))
    rows = traffic[first].drop(list(left_out)).to_pandas()
    original = load_package(tmp_path / "v1.keel").predict(rows)
    np.testing.assert_array_equal(load_package(tmp_path / "rebuilt.keel").predict(rows), original)

    # -- the first release: gates, then a second person's approval ---------------------------
    ok(keel("users", "add", "ben", "--role", "approver"))
    asked = ok(
        keel("promote", f"{model}@1", "--to", "production", "--reason", "first", "--json"), 8
    ).json()
    assert asked["outcome"] == "pending" and all(g["passed"] for g in asked["gates"]), asked
    request = asked["request"]["id"]
    own = ok(keel("approve", request), 5)
    assert "cannot decide it" in own.err
    with as_user(monkeypatch, "ben"):
        ok(keel("approve", request, "--comment", "checked the gates"))
    held = ok(keel("models", "show", f"{model}@production", "--json")).json()["version"]
    assert held["version"] == 1

    # Labels are writes: the serving port takes them from a token whose user may label.
    ok(keel("users", "add", "labels", "--role", "labeler"))
    labeler = {"Authorization": f"Bearer {ok(keel('tokens', 'create', 'labels')).out.strip()}"}
    with serve(folder, tmp_path / "serve.log") as server:
        # -- a NUL no store can hold is refused at the edge, naming the field; on PostgreSQL
        # one such request, answered 200, used to stop the prediction log for good ---------
        row = request_records(traffic[first], drop=left_out)[0]
        text = next(name for name, value in row.items() if isinstance(value, str))
        for document, field in (
            ({"records": [row], "id": "a\u0000b"}, "id"),
            ({"records": [{**row, text: "x\u0000y"}]}, f"records[0].{text}"),
        ):
            status, answer = server.call("POST", "/predict", document)
            assert status == 400, answer
            assert answer["problems"][0]["field"] == field
        status, answer = server.call(
            "POST",
            "/v1/feedback",
            {"labels": [{"prediction_id": "a\u0000", "label": 1}]},
            labeler,
        )
        assert status == 400 and "NUL" in json.dumps(answer), answer

        # -- serving: /predict and Open Inference Protocol clients (HTTP, gRPC) agree -------
        # (every prediction below must reach the log: `keel feedback` finds them all)
        served, ids, labels = _labels(server, traffic[first], target, left_out)
        assert {(a["version"], a["slot"]) for a in served} == {(1, "production")}
        complete = [
            r for r in request_records(traffic[first], drop=left_out) if None not in r.values()
        ][:5]
        assert complete, "no request row has every input"
        by_json = server.post("/predict", {"records": complete})["predictions"]
        by_triton = triton_infer(server.url, model, complete)
        by_grpc = triton_infer(server.grpc, model, complete, grpc=True)
        assert by_grpc.keys() == by_triton.keys()
        for output, values in [*by_triton.items(), *by_grpc.items()]:
            expected = [p[output] for p in by_json]
            np.testing.assert_allclose(np.asarray(values, dtype=float), expected, rtol=1e-12)

        # -- labels arrive; monitoring judges windows of the traffic ------------------------
        recorded = _feedback(keel, tmp_path, ids, labels)
        assert recorded["feedback"]["recorded"] == len(ids)
        monitored = ok(keel("monitor", "--window", str(WINDOW), "--json")).json()
        judged = [w for w in monitored["windows"] if w["rows"] == WINDOW]
        assert len(judged) == TRAFFIC_ROWS // WINDOW, monitored["windows"]
        assert all(w["metric"] == example.metric and w["coverage"] == 1.0 for w in judged)
        assert all(w["performance"] is not None for w in judged)
        assert any(w["drifted"] for w in judged)  # a later month than the model saw

        # -- retraining: the source caught up, the contract reviewed, a challenger ----------
        pq.write_table(traffic[first], folder / "data" / "raw" / f"{first}.parquet")
        ok(
            keel(
                "contract",
                "infer",
                "data/raw",
                "-o",
                "contracts/raw.yaml",
                "--timestamp",
                timestamp,
            )
        )
        _commit(folder, f"contract reviewed for {first}")
        retrain_as_of = _iso(_month_after(first))
        retrained = ok(keel("retrain", "--if-triggered", "--as-of", retrain_as_of, "--json")).json()
        assert retrained["fired"] and retrained["decision"] == "canary", retrained
        assert retrained["challenger"] == 2 and retrained["comparison"]["passed"] is True
        assert retrained["release"]["outcome"] == "promoted"
        canary = ok(keel("models", "show", f"{model}@canary", "--json")).json()["version"]
        assert canary["version"] == 2

        # -- the canary answers half of the traffic; its analysis promotes it ---------------
        eventually(lambda: server.call("GET", f"/v2/models/{model}/versions/2/ready")[0] == 200)
        answers, ids, labels = _labels(server, traffic[second], target, left_out)
        slots = {(a["version"], a["slot"]) for a in answers}
        assert slots == {(1, "production"), (2, "canary")}, slots
        _feedback(keel, tmp_path, ids, labels)
        later = _iso(datetime.now(UTC) + timedelta(hours=2))
        checked = ok(keel("canary", "check", "--now", later, "--json")).json()
        # Production needs an approval: the analysis asks for it.
        assert (checked["verdict"], checked["action"]) == ("promote", "requested"), checked
        with as_user(monkeypatch, "ben"):
            ok(keel("approve", checked["request"]["id"], "--comment", "canary passed"))
        ok(keel("canary", "check", "--now", later))
        held = ok(keel("models", "show", f"{model}@production", "--json")).json()["version"]
        assert held["version"] == 2

        # -- rollback: production returns to v1, and the server follows ---------------------
        ok(keel("rollback", model, "--reason", "back to the first release"))
        eventually(lambda: server.post("/predict", {"records": complete[:1]})["version"] == 1)

    # -- explain a served prediction; the audit log; the scorecard ---------------------------
    explained = ok(keel("explain", served[0]["id"], "--json")).json()
    assert explained["model"]["ref"] == f"{model}@1"
    assert explained["run"]["lineage"]["dataset"] == snapshot["version"]["id"]
    assert explained["run"]["lineage"]["git_commit"]
    [release] = explained["release"]["releases"][:1]
    assert [a["actor"] for a in release["approvals"]] == ["ben"]
    ok(keel("audit-log", "verify"))
    events = ok(keel("audit-log", model, "--json")).json()["events"]
    kinds = {e["kind"] for e in events}
    assert {"release.approved", "retraining.decided", "alias.rolled_back"} <= kinds, kinds
    card = ok(keel("audit", "--json")).json()
    status = {item["key"]: item["status"] for item in card["items"]}
    assert status["release.used"] == status["reproducibility.code"] == "pass", status
    assert card["level"] >= 2, card
