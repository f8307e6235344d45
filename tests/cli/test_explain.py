"""`keel explain PREDICTION_ID`: the whole chain behind a logged prediction, down to the
release and the approvals that put its version in the alias that answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from keel.domain.identity import Actor
from keel.metadata.base import FeedbackRow
from keel.predlog.ids import new_prediction_id
from keel.predlog.log import PredictionBatch
from keel.predlog.read import compact
from keel.predlog.writer import StoredPredictionLog
from keel.project import Project
from keel.release import approve, promote, rollback
from tests.fixtures.cli import Keel
from tests.fixtures.trained import MODEL, PARAMS, write_spec

THRESHOLD = {"type": "metric_threshold", "metric": "roc_auc", "min": 0.5}
ANA = Actor("ana")
BEN = Actor("ben")


def _open(folder: Path) -> Project:
    return Project.open(folder, env={"KEEL_USER": "ana"})


def _approved_to_production(folder: Path, version: int) -> str:
    """ana requests `version` -> production, ben approves: returns the request id."""
    write_spec(folder, {"gates": [THRESHOLD], "approvals": {"required": 1}})
    with _open(folder) as project:
        requested = promote(project, f"{MODEL}@{version}", "production", actor=ANA, reason="auc")
        assert requested.outcome == "pending" and requested.request is not None
        decided = approve(project, requested.request.id, actor=BEN, comment="checked the gates")
        assert decided.outcome == "approved"
        return requested.request.id


def _log(folder: Path, version: int, slot: str, at: datetime | None = None) -> str:
    """Log one served row, as `keel serve` does: returns its prediction id."""
    with _open(folder) as project:
        raw = pq.read_table(folder / "raw.parquet").slice(0, 1).drop_columns(["late"])
        inputs = {
            name: [value.isoformat() if isinstance(value, datetime) else value]
            for name, value in raw.to_pylist()[0].items()
        }
        prediction_id = new_prediction_id()
        with StoredPredictionLog(project.metadata.predictions) as log:
            log.submit(
                PredictionBatch(
                    ids=[prediction_id],
                    at=at or datetime.now(UTC),
                    model=MODEL,
                    version=version,
                    slot=slot,  # type: ignore[arg-type]
                    inputs=inputs,
                    outputs={"prediction": [1], "probability": [0.81]},
                    latency_ms=2.5,
                    client_id="req-7",
                )
            )
        return prediction_id


def _explain(keel: Keel, folder: Path, prediction_id: str) -> dict[str, Any]:
    result = keel("-C", folder, "explain", prediction_id, "--json")
    assert result.code == 0, result.out + result.err
    document: dict[str, Any] = result.json()
    return document


def test_explain_returns_the_whole_chain(keel: Keel, release_project: Path) -> None:
    request_id = _approved_to_production(release_project, 2)
    prediction_id = _log(release_project, 2, "production")

    chain = _explain(keel, release_project, prediction_id)

    prediction = chain["prediction"]
    assert prediction["id"] == prediction_id and prediction["ref"] == f"{MODEL}@2"
    assert prediction["slot"] == "production" and prediction["client_id"] == "req-7"
    assert prediction["outputs"] == {"prediction": 1, "probability": 0.81}
    assert "distance" in prediction["inputs"] and "late" not in prediction["inputs"]
    with _open(release_project) as project:
        version = project.metadata.models.get(MODEL, 2)
        run = project.metadata.runs.get(version.run_id)
        assert run.dataset is not None
        dataset = project.metadata.datasets.get(run.dataset)
    model = chain["model"]
    assert model["package"] == str(version.package) and model["flavor"] == version.flavor
    assert model["metrics"] == version.metrics and "production" in model["aliases"]
    assert chain["run"]["id"] == run.id
    assert chain["run"]["params"]["max_iter"] == str(PARAMS[2]["max_iter"])
    lineage = chain["run"]["lineage"]
    assert lineage["seed"] == 7
    assert lineage["dataset"] == str(dataset.id)
    assert lineage["feature_code_hash"] == run.feature_code_hash is not None
    assert lineage["training_code_hash"] == run.training_code_hash is not None
    assert lineage["git_commit"] == run.git_commit and "git_dirty" in lineage
    assert chain["dataset"]["id"] == str(dataset.id) and chain["dataset"]["rows"] == dataset.rows
    assert chain["environment"]["digest"] == run.environment
    assert "scikit-learn" in chain["environment"]["key_packages"]

    release = chain["release"]
    assert release["alias"] == "production" and release["holder_at_prediction"] == 2
    assert release["aliases_held"] == ["production"]
    [record] = release["releases"]
    assert record["how"] == "promoted" and record["version"] == 2
    assert record["request"] == request_id and record["requested_by"] == "ana"
    assert record["event"]["kind"] == "alias.moved" and record["event"]["actor"] == "ben"
    assert record["event"]["from"] is None and record["event"]["reason"] == "auc"
    [approval] = record["approvals"]
    assert approval["actor"] == "ben" and approval["decision"] == "approve"
    assert approval["comment"] == "checked the gates"
    [gate] = record["gates"]
    assert gate["type"] == "metric_threshold" and gate["passed"] is True
    assert gate["evidence"]["value"] > 0.5

    text = keel("-C", release_project, "explain", prediction_id.upper())
    assert text.code == 0, text.err
    for expected in (
        f"prediction   {prediction_id}",
        f"model        {MODEL}@2",
        "promoted     v2 -> production",
        "requested  by ana",
        "approved   by ben",
        "gate       PASS  roc_auc >= 0.5",
        "scikit-learn",
    ):
        assert expected in text.out, (expected, text.out)


def test_explain_follows_a_rollback_to_the_release_before_it(
    keel: Keel, release_project: Path
) -> None:
    request_id = _approved_to_production(release_project, 2)
    before_any_move = _log(release_project, 2, "production", datetime.now(UTC) - timedelta(days=1))
    write_spec(release_project, {"gates": [], "approvals": {"required": 0}})
    with _open(release_project) as project:
        assert promote(project, f"{MODEL}@1", "production", actor=ANA).outcome == "promoted"
    on_v1 = _log(release_project, 1, "production")
    with _open(release_project) as project:
        rollback(project, MODEL, actor=ANA, reason="v1 is worse live")
    after_rollback = _log(release_project, 2, "production")

    direct = _explain(keel, release_project, on_v1)["release"]
    [record] = direct["releases"]
    assert record["how"] == "promoted" and record["request"] is None
    assert record["requested_by"] == "ana" and record["approvals"] == []
    assert record["event"]["from"] == 2 and record["gates"] == []

    rolled = _explain(keel, release_project, after_rollback)["release"]
    assert rolled["holder_at_prediction"] == 2
    [record] = rolled["releases"]
    assert record["how"] == "rolled back" and record["event"]["reason"] == "v1 is worse live"
    original = record["original"]
    assert original["how"] == "promoted" and original["request"] == request_id
    assert [a["actor"] for a in original["approvals"]] == ["ben"]

    # Logged before v2 held production (a server not yet reloaded): the release is named,
    # and the holder at that time (none) says so.
    early = _explain(keel, release_project, before_any_move)["release"]
    assert early["holder_at_prediction"] is None and early["aliases_held"] == []
    assert early["releases"][0]["request"] == request_id

    text = keel("-C", release_project, "explain", after_rollback)
    assert "rolled back  v2 -> production (was v1)" in text.out
    assert "first put there by:" in text.out


def test_batch_rows_and_compacted_rows_are_explained(keel: Keel, release_project: Path) -> None:
    _approved_to_production(release_project, 2)
    pq.write_table(
        pq.read_table(release_project / "raw.parquet").slice(0, 40), release_project / "in.parquet"
    )
    out = release_project / "out.parquet"
    scored = keel(
        "-C", release_project, "predict-batch", release_project / "in.parquet", out,
        "--model", f"{MODEL}@production",
    )  # fmt: skip
    assert scored.code == 0, scored.err
    prediction_id = pq.read_table(out)["prediction_id"][7].as_py()
    before = _explain(keel, release_project, prediction_id)
    assert before["prediction"]["slot"] == "batch"
    assert before["release"]["alias"] is None
    assert before["release"]["aliases_held"] == ["production"]
    assert before["release"]["releases"][0]["approvals"][0]["actor"] == "ben"

    with _open(release_project) as project:
        later = datetime.now(UTC) + timedelta(minutes=1)
        report = compact(project, older_than=timedelta(seconds=1), now=later)
        assert report.rows == 40 and project.metadata.predictions.get(prediction_id) is None
    after = _explain(keel, release_project, prediction_id)
    assert after == before


def test_unknown_and_malformed_ids(keel: Keel, release_project: Path) -> None:
    unknown = new_prediction_id()
    missing = keel("-C", release_project, "explain", unknown)
    assert missing.code == 3 and unknown in missing.err
    as_json = keel("-C", release_project, "explain", unknown, "--json")
    assert as_json.code == 3 and as_json.json()["error"]["code"] == "not_found"
    malformed = keel("-C", release_project, "explain", "not-an-id")
    assert malformed.code == 2 and "not a prediction id" in malformed.err


def test_well_formed_ids_keel_never_issued_are_not_found(keel: Keel, release_project: Path) -> None:
    # 32 hex characters outside the UUIDv7 layout keel issues: no such prediction, not malformed.
    for text in ("0123456789abcdef0123456789abcdef", "0" * 32):
        missing = keel("-C", release_project, "explain", text)
        assert missing.code == 3, missing.err
        assert "no prediction" in missing.err and "not a prediction id" not in missing.err
    for text in ("0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0", "g" * 32):
        malformed = keel("-C", release_project, "explain", text)
        assert malformed.code == 2 and "not a prediction id" in malformed.err


def test_ids_pasted_in_upper_case_or_as_a_dashed_uuid_are_explained(
    keel: Keel, release_project: Path
) -> None:
    _approved_to_production(release_project, 2)
    prediction_id = _log(release_project, 2, "production")
    dashed = "-".join(
        prediction_id[a:b] for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
    )
    for text in (prediction_id.upper(), dashed, f"  {dashed.upper()} "):
        chain = _explain(keel, release_project, text)
        assert chain["prediction"]["id"] == prediction_id


def test_explain_shows_the_current_label_and_what_it_replaced(
    keel: Keel, release_project: Path
) -> None:
    prediction_id = _log(release_project, 2, "production")
    assert _explain(keel, release_project, prediction_id)["labels"] == []
    with _open(release_project) as project:
        at = datetime.now(UTC)
        project.metadata.feedback.record([FeedbackRow(prediction_id, MODEL, at, 1)], actor="lena")
        project.metadata.feedback.record([FeedbackRow(prediction_id, MODEL, at, 0)], actor="tom")

    labels = _explain(keel, release_project, prediction_id)["labels"]
    assert [(e["label"], e["received_by"], e["superseded_by"]) for e in labels] == [
        (1, "lena", "tom"),
        (0, "tom", None),
    ]
    text = keel("-C", release_project, "explain", prediction_id)
    assert text.code == 0, text.err
    assert "label      0 (recorded by tom" in text.out
    assert f"replaced 1 earlier label(s): keel feedback --history {prediction_id}" in text.out
