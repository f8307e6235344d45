"""Delayed feedback on a real trained flights project: predictions logged by `keel
predict-batch` (or a real server), labels joined by id or by entity key and time, and
performance per window checked against scikit-learn on the joined rows."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from keel.errors import ConfigError, ContractViolation, DataError
from keel.monitoring.feedback import (
    MIN_LABELS,
    align,
    ingest,
    performance,
    read_feedback_file,
)
from keel.predlog.read import compact
from keel.project import Project
from keel.serving.batch import predict_batch
from keel.spec import parse_spec
from tests.fixtures.cli import Keel
from tests.fixtures.trained import BASE, MODEL, write_spec
from tests.serving.support import Client, records, serve, set_alias

ENV = {"KEEL_USER": "ana"}


def _open(folder: Path) -> Project:
    return Project.open(folder, env=ENV)


def _score(project: Project, folder: Path, start: int, count: int, name: str = "out") -> pa.Table:
    """Score raw rows `start .. start+count` with v2 through `predict-batch` (so each is
    logged); the output has prediction_id, prediction, probability and the raw columns,
    `late` (the ground truth) included."""
    source = pq.read_table(folder / "raw.parquet").slice(start, count)
    pq.write_table(source, folder / f"{name}-in.parquet")
    predict_batch(project, folder / f"{name}-in.parquet", folder / f"{name}.parquet", f"{MODEL}@2")
    return pq.read_table(folder / f"{name}.parquet")


def _labels(scored: pa.Table, rows: list[int] | None = None) -> pa.Table:
    picked = scored if rows is None else scored.take(rows)
    return pa.table({"prediction_id": picked["prediction_id"], "label": picked["late"]})


def _whole_range(project: Project) -> tuple[datetime, datetime]:
    stats = project.metadata.predictions.stats()
    first = min(s.first_at for s in stats if s.first_at is not None)
    last = max(s.last_at for s in stats if s.last_at is not None)
    return first, last + timedelta(seconds=1)


def _one_window(project: Project, **options: Any) -> list[Any]:
    """Performance over one window holding every logged prediction."""
    start, end = _whole_range(project)
    return performance(project, MODEL, start=start, end=end, window=end - start, **options)


# --- the acceptance: AUC over the joined rows equals scikit-learn's ------------------------


def test_feedback_joined_auc_equals_sklearn_on_the_joined_rows(release_project: Path) -> None:
    with _open(release_project) as project:
        scored = _score(project, release_project, 0, 2_000)
        # Labels arrive for 60% of the predictions, in a shuffled order.
        rows = list(range(0, 2_000, 5)) + [r for r in range(2_000) if r % 5 in (1, 3)]
        rows = rows[::-1]
        result = ingest(project, _labels(scored, rows))
        assert (result.receipt.new, result.receipt.replaced, result.unknown) == (1_200, 0, 0)
        assert set(result.models) == {MODEL}

        [window] = _one_window(project)
        joined = scored.take(sorted(rows))
        expected = roc_auc_score(joined["late"].to_numpy(), joined["probability"].to_numpy())
        assert window.metric == "roc_auc" and window.version == 2
        assert (window.predictions, window.labelled) == (2_000, 1_200)
        assert window.coverage == pytest.approx(0.6)
        assert window.value == pytest.approx(expected, abs=1e-12)

        # Another metric of the spec's definitions, from the logged class predictions.
        [accuracy] = _one_window(project, metric="accuracy")
        assert accuracy.value == pytest.approx(
            accuracy_score(joined["late"].to_numpy(), joined["prediction"].to_numpy())
        )


def test_ids_as_people_paste_them_join_as_keel_explain_takes_them(release_project: Path) -> None:
    # Upper case, the dashed UUID form, stray spaces: the same predictions, joined.
    with _open(release_project) as project:
        scored = _score(project, release_project, 0, 30)
        ids = scored["prediction_id"].to_pylist()
        pasted = [
            f"{i[:8]}-{i[8:12]}-{i[12:16]}-{i[16:20]}-{i[20:]}"
            if n % 3 == 0
            else i.upper()
            if n % 3 == 1
            else f" {i} "
            for n, i in enumerate(ids)
        ]
        labels = pa.table({"prediction_id": pasted, "label": scored["late"]})
        result = ingest(project, labels)
        assert (result.receipt.new, result.unknown) == (30, 0)
        # The same prediction twice, once pasted in upper case, is one label given twice.
        twice = pa.table({"prediction_id": [ids[1], ids[1].upper()], "label": [0, 1]})
        with pytest.raises(DataError, match="appears more than once"):
            ingest(project, twice)


def test_compacted_predictions_join_and_score_the_same(release_project: Path) -> None:
    with _open(release_project) as project:
        scored = _score(project, release_project, 0, 600)
        ingest(project, _labels(scored, list(range(0, 600, 2))))
        [before] = _one_window(project)

        report = compact(project, older_than=timedelta(0))
        assert report.rows == 600 and project.metadata.predictions.stats()[0].rows == 0
        # Labels for predictions that now live in a Parquet segment resolve just the same.
        result = ingest(project, _labels(scored, list(range(1, 600, 2))))
        assert (result.receipt.new, result.unknown) == (300, 0)
        [after] = _one_window(project)
        assert (before.labelled, after.labelled) == (300, 600)
        assert after.value == pytest.approx(
            roc_auc_score(scored["late"].to_numpy(), scored["probability"].to_numpy()), abs=1e-12
        )


# --- coverage, replacement, windows ---------------------------------------------------------


def test_coverage_follows_the_labels_as_they_arrive(release_project: Path) -> None:
    with _open(release_project) as project:
        scored = _score(project, release_project, 0, 400)
        [nothing] = _one_window(project)
        assert (nothing.labelled, nothing.coverage, nothing.value) == (0, 0.0, None)
        assert nothing.note == "no labels yet"

        ingest(project, _labels(scored, list(range(10))))
        [few] = _one_window(project)
        assert (few.predictions, few.labelled, few.value) == (400, 10, None)
        assert few.note == f"10 labelled; at least {MIN_LABELS} are needed"

        ingest(project, _labels(scored, list(range(10, 100))))
        [quarter] = _one_window(project)
        assert (quarter.labelled, quarter.coverage) == (100, 0.25)
        assert quarter.value is not None

        ingest(project, _labels(scored, list(range(100, 140))))
        [window] = _one_window(project)
        assert (window.labelled, window.coverage) == (140, 0.35)


def test_one_class_labels_give_no_auc_and_say_why(release_project: Path) -> None:
    with _open(release_project) as project:
        scored = _score(project, release_project, 0, 300)
        zeros = [r for r in range(300) if scored["late"][r].as_py() == 0][:50]
        ingest(project, _labels(scored, zeros))
        [window] = _one_window(project)
        assert window.value is None and window.labelled == 50
        assert window.note == "roc_auc needs two classes; every label is 0"


def test_a_later_label_replaces_the_earlier_one(release_project: Path) -> None:
    with _open(release_project) as project:
        scored = _score(project, release_project, 0, 300)
        ingest(project, _labels(scored))
        [truth] = _one_window(project)

        # Re-send every label with the first 100 flipped: 300 replaced, 100 changed.
        flipped = pc.if_else(
            pa.array([r < 100 for r in range(300)]),
            pc.subtract(1, scored["late"]),
            scored["late"],
        )
        again = ingest(
            project, pa.table({"prediction_id": scored["prediction_id"], "label": flipped})
        )
        assert (again.receipt.new, again.receipt.replaced, again.receipt.changed) == (0, 300, 100)
        [window] = _one_window(project)
        assert window.labelled == 300
        expected = roc_auc_score(flipped.to_numpy(), scored["probability"].to_numpy())
        assert window.value == pytest.approx(expected, abs=1e-12) and window.value != truth.value
        ids = scored["prediction_id"].to_pylist()[:2]
        labels = project.metadata.feedback.labels(ids)
        assert [labels[i] for i in ids] == flipped.to_pylist()[:2]


def test_windows_are_cut_per_window_and_per_version(release_project: Path) -> None:
    with _open(release_project) as project:
        v2 = _score(project, release_project, 0, 200, "a")
        predict_batch(
            project, release_project / "a-in.parquet", release_project / "b.parquet", f"{MODEL}@1"
        )
        v1 = pq.read_table(release_project / "b.parquet")
        ingest(project, _labels(v2, list(range(100))))
        ingest(project, _labels(v1, list(range(200))))
        start, end = _whole_range(project)
        entries = performance(project, MODEL, start=start, end=end, window=end - start)
        assert [(e.version, e.predictions, e.labelled) for e in entries] == [
            (1, 200, 200),
            (2, 200, 100),
        ]
        [only_v1] = performance(project, MODEL, start=start, end=end, window=end - start, version=1)
        assert only_v1.value == pytest.approx(
            roc_auc_score(v1["late"].to_numpy(), v1["probability"].to_numpy()), abs=1e-12
        )
        # An empty window says so; windows are laid end to end from `start`.
        later = performance(
            project, MODEL, start=end, end=end + timedelta(hours=2), window=timedelta(hours=1)
        )
        assert [(e.start - end, e.version, e.note) for e in later] == [
            (timedelta(0), None, "no predictions"),
            (timedelta(hours=1), None, "no predictions"),
        ]


def test_align_lays_windows_from_the_epoch() -> None:
    moment = datetime(2024, 5, 1, 13, 45, 12, tzinfo=UTC)
    assert align(moment, timedelta(days=1)) == datetime(2024, 5, 1, tzinfo=UTC)
    assert align(moment, timedelta(hours=6)) == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert align(moment, timedelta(minutes=15)) == datetime(2024, 5, 1, 13, 45, tzinfo=UTC)


# --- the entity-key join --------------------------------------------------------------------

KEYS = ["carrier", "flight", "time_hour"]


def _entity_project(folder: Path, **feedback: Any) -> None:
    write_spec(
        folder,
        data={**BASE["data"], "entity_key": KEYS},  # type: ignore[dict-item]
        monitoring={"feedback": {"join": "entity", "time_column": "observed_at", **feedback}},
    )


def _unique_rows(folder: Path, count: int) -> list[int]:
    raw = pq.read_table(folder / "raw.parquet").select(KEYS).slice(0, count * 2)
    seen: set[tuple[Any, ...]] = set()
    rows = []
    for index, row in enumerate(raw.to_pylist()):
        key = tuple(row[k] for k in KEYS)
        if key not in seen:
            seen.add(key)
            rows.append(index)
    return rows[:count]


def test_entity_join_picks_the_newest_prediction_before_the_label(release_project: Path) -> None:
    _entity_project(release_project)
    with _open(release_project) as project:
        first = _score(project, release_project, 0, 200, "first")
        time.sleep(0.05)
        between = datetime.now(UTC)
        time.sleep(0.05)
        second = _score(project, release_project, 0, 200, "second")
        after = datetime.now(UTC) + timedelta(seconds=1)
        rows = _unique_rows(release_project, 100)
        keys = first.take(rows).select(KEYS)

        def labelled(at: datetime, label: pa.Array) -> pa.Table:
            times = pa.array([at] * len(rows), pa.timestamp("us", tz="UTC"))
            return keys.append_column("observed_at", times).append_column("label", label)

        # Labels about a time between the two scorings match the first scoring's rows ...
        result = ingest(project, labelled(between, first.take(rows)["late"]))
        assert (result.receipt.new, result.unknown) == (100, 0)
        stored = project.metadata.feedback.labels(first["prediction_id"].to_pylist())
        assert set(stored) == set(first.take(rows)["prediction_id"].to_pylist())

        # ... and labels about a later time, the newer rows (as text times, from a CSV).
        times = pa.array([after.isoformat()] * len(rows))
        table = keys.append_column("observed_at", times).append_column(
            "label", second.take(rows)["late"]
        )
        pcsv.write_csv(table, release_project / "later.csv")
        later = ingest(project, read_feedback_file(release_project / "later.csv"))
        assert (later.receipt.new, later.unknown) == (100, 0)
        stored = project.metadata.feedback.labels(second["prediction_id"].to_pylist())
        assert set(stored) == set(second.take(rows)["prediction_id"].to_pylist())

        # A label about a time before any prediction matches nothing: refused, then skipped.
        early = labelled(between - timedelta(hours=1), first.take(rows)["late"])
        with pytest.raises(ContractViolation, match="100 of 100 row"):
            ingest(project, early)
        skipped = ingest(project, early, allow_unknown=True)
        assert (skipped.receipt.rows, skipped.unknown) == (0, 100)
        assert project.metadata.feedback.count(MODEL) == 200


def test_entity_join_respects_max_lag(release_project: Path) -> None:
    _entity_project(release_project, max_lag="1h")
    with _open(release_project) as project:
        scored = _score(project, release_project, 0, 50)
        rows = _unique_rows(release_project, 20)
        keys = scored.take(rows).select(KEYS)
        late = datetime.now(UTC) + timedelta(hours=2)  # two hours after: beyond max_lag
        table = keys.append_column(
            "observed_at", pa.array([late] * len(rows), pa.timestamp("us", tz="UTC"))
        ).append_column("label", scored.take(rows)["late"])
        with pytest.raises(ContractViolation, match="within 1h before their observed_at"):
            ingest(project, table)
        assert project.metadata.feedback.count(MODEL) == 0


def test_entity_join_refuses_two_rows_for_one_prediction(release_project: Path) -> None:
    _entity_project(release_project)
    with _open(release_project) as project:
        scored = _score(project, release_project, 0, 50)
        [row] = _unique_rows(release_project, 1)
        keys = scored.take([row, row]).select(KEYS)
        now = datetime.now(UTC)
        table = keys.append_column(
            "observed_at", pa.array([now, now], pa.timestamp("us", tz="UTC"))
        ).append_column("label", pa.array([0, 1]))
        with pytest.raises(DataError, match="matches the same prediction as an earlier row"):
            ingest(project, table)
        assert project.metadata.feedback.count(MODEL) == 0


def test_entity_join_needs_a_time_column_and_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec("name: m\nmonitoring:\n  feedback: {join: entity}\n")
    assert caught.value.problems == [
        (
            "monitoring.feedback",
            "time_column is required when join is 'entity': name the column holding the "
            "time each label is about",
        )
    ]
    with pytest.raises(ConfigError) as caught:
        parse_spec("name: m\nmonitoring:\n  feedback: {metric: auc, max_lag: 0}\n")
    assert [path for path, _ in caught.value.problems] == [
        "monitoring.feedback.max_lag",
        "monitoring.feedback.metric",
    ]
    spec = parse_spec("name: m\n").monitoring.feedback
    assert (spec.join, spec.id_column, spec.label_column, spec.max_lag) == (
        "id",
        "prediction_id",
        "label",
        timedelta(days=1),
    )


# --- malformed input changes nothing and names the field ------------------------------------


def _write(folder: Path, name: str, table: pa.Table | str) -> Path:
    path = folder / name
    if isinstance(table, str):
        path.write_text(table)
    elif name.endswith(".parquet"):
        pq.write_table(table, path)
    else:
        pcsv.write_csv(table, path)
    return path


@pytest.fixture
def scored_project(release_project: Path) -> tuple[Path, pa.Table]:
    with _open(release_project) as project:
        scored = _score(project, release_project, 0, 100)
        ingest(project, _labels(scored, list(range(5))))
    return release_project, scored


def _bad_files(folder: Path, scored: pa.Table) -> dict[str, tuple[Path, int, str]]:
    """name -> (file, exit code, what the message must say)."""
    ids = scored["prediction_id"].to_pylist()
    late = scored["late"].to_pylist()
    good = _labels(scored)
    unknown = [*ids[:3], "0190aaaaaaaa7aaa8aaaaaaaaaaaaaaa", "0190bbbbbbbb7bbb9bbbbbbbbbbbbbbb"]
    return {
        "missing label column": (
            _write(folder, "a.csv", good.select(["prediction_id"])),
            2,
            "label: missing column (the columns are: prediction_id)",
        ),
        "null label": (
            _write(folder, "b.csv", f"prediction_id,label\n{ids[0]},1\n{ids[1]},\n{ids[2]},0\n"),
            2,
            "label: must not be null (row 2)",
        ),
        "non-finite label": (
            _write(
                folder,
                "c.parquet",
                pa.table({"prediction_id": ids[:3], "label": [0.0, float("nan"), 1.0]}),
            ),
            2,
            "label: must be a finite number (row 2)",
        ),
        "label of the wrong type": (
            _write(
                folder,
                "d.parquet",
                pa.table(
                    {"prediction_id": ids[:2], "label": pa.array([[1], [0]], pa.list_(pa.int64()))}
                ),
            ),
            2,
            "label: must be a finite number, a string or a boolean; the column holds list",
        ),
        "malformed id": (
            _write(folder, "e.csv", f"prediction_id,label\n{ids[0]},1\nnot-an-id,0\n"),
            2,
            "prediction_id: must be a prediction id: 32 lowercase hex characters",
        ),
        "id twice": (
            _write(folder, "f.csv", f"prediction_id,label\n{ids[0]},1\n{ids[1]},0\n{ids[0]},0\n"),
            2,
            "prediction_id: appears more than once: one label per prediction (row 3)",
        ),
        "mixed kinds in JSON lines": (
            _write(
                folder,
                "g.jsonl",
                "\n".join(
                    json.dumps({"prediction_id": i, "label": v})
                    for i, v in zip(ids[:4], [1, 0, "yes", 1], strict=True)
                ),
            ),
            2,
            "label: mixes number, text: expected number like most rows (row 3)",
        ),
        "malformed JSON line": (
            _write(folder, "h.jsonl", f'{{"prediction_id": "{ids[0]}", "label": 1}}\n{{oops\n'),
            2,
            "line 2, column 2: not valid JSON",
        ),
        "unknown ids": (
            _write(folder, "i.csv", pa.table({"prediction_id": unknown, "label": late[:5]})),
            1,
            "2 of 5 row(s) name no logged prediction in the prediction log (prediction_id "
            "0190aaaaaaaa7aaa8aaaaaaaaaaaaaaa, 0190bbbbbbbb7bbb9bbbbbbbbbbbbbbb; row 4, 5)",
        ),
        "unknown format": (_write(folder, "j.txt", "x"), 2, "cannot tell the format"),
    }


CASES = [
    "missing label column",
    "null label",
    "non-finite label",
    "label of the wrong type",
    "malformed id",
    "id twice",
    "mixed kinds in JSON lines",
    "malformed JSON line",
    "unknown ids",
    "unknown format",
]


@pytest.mark.parametrize("case", CASES)
def test_a_malformed_file_changes_nothing_and_names_the_field(
    keel: Keel, scored_project: tuple[Path, pa.Table], case: str
) -> None:
    folder, scored = scored_project
    path, code, said = _bad_files(folder, scored)[case]
    result = keel("-C", folder, "feedback", path, "--json")
    assert result.code == code, result.out + result.err
    error = result.json()["error"]
    assert said in error["message"]
    assert str(path) in error["message"]
    with _open(folder) as project:
        assert project.metadata.feedback.count(MODEL) == 5  # only what was there before


def test_allow_unknown_records_the_rest_and_counts_the_skipped(
    keel: Keel, scored_project: tuple[Path, pa.Table]
) -> None:
    folder, scored = scored_project
    path, _, _ = _bad_files(folder, scored)["unknown ids"]
    result = keel("-C", folder, "feedback", path, "--allow-unknown", "--json")
    assert result.code == 0, result.out + result.err
    document = result.json()
    assert document["feedback"]["recorded"] == 3 and document["feedback"]["unknown"] == 2
    assert document["feedback"]["replaced"] == 3  # those three had labels already
    assert document["feedback"]["unknown_ids"] == [
        "0190aaaaaaaa7aaa8aaaaaaaaaaaaaaa",
        "0190bbbbbbbb7bbb9bbbbbbbbbbbbbbb",
    ]
    assert document["feedback"]["unknown_rows"] == [4, 5]


# --- the command line ----------------------------------------------------------------------


def test_cli_records_a_file_and_shows_the_windows_it_touched(
    keel: Keel, release_project: Path
) -> None:
    with _open(release_project) as project:
        scored = _score(project, release_project, 0, 500)
    pq.write_table(_labels(scored, list(range(250))), release_project / "labels.parquet")

    result = keel("-C", release_project, "feedback", release_project / "labels.parquet", "--json")
    assert result.code == 0, result.out + result.err
    document = result.json()
    assert document["feedback"]["new"] == 250 and document["feedback"]["join"] == "id"
    assert document["window"] == "1d"
    today = align(datetime.now(UTC), timedelta(days=1))
    [entry] = [e for e in document["performance"] if e["start"] == today.isoformat()]
    assert (entry["version"], entry["predictions"], entry["labelled"]) == (2, 500, 250)
    assert entry["coverage"] == 0.5 and entry["metric"] == "roc_auc"
    expected = roc_auc_score(
        scored["late"].to_numpy()[:250], scored["probability"].to_numpy()[:250]
    )
    assert entry["value"] == pytest.approx(expected, abs=1e-12)

    text = keel("-C", release_project, "feedback", release_project / "labels.parquet")
    assert text.code == 0
    assert "recorded 250 of 250 label(s) for flights-delay (joined by id): 0 new, 250 replaced" in (
        text.out
    )
    assert "ROC_AUC" in text.out and "50.0%" in text.out

    shown = keel("-C", release_project, "feedback", "--window", "1h", "--json")
    assert shown.code == 0, shown.out + shown.err
    report = shown.json()
    assert report["model"] == MODEL and report["window"] == "1h" and report["labels"] == 250
    assert len([e for e in report["performance"] if e["predictions"]]) >= 1
    assert sum(e["labelled"] for e in report["performance"]) == 250

    only_v1 = keel("-C", release_project, "feedback", "--version", "1", "--json")
    assert only_v1.code == 0
    assert {e["note"] for e in only_v1.json()["performance"]} == {"no predictions of v1"}

    refused = keel("-C", release_project, "feedback", "x.csv", "--since", "2024-01-01")
    assert refused.code == 2 and "--since and --until apply without FILE only" in refused.err


# --- HTTP: the serving app and the token-checked API ---------------------------------------


def test_http_feedback_on_a_real_server(release_project: Path) -> None:
    with _open(release_project) as project:
        set_alias(project, "production", 2)
        identities = project.metadata.identities
        identities.add_user("tina", ["trainer"], actor="ana")
        identities.add_user("vic", ["viewer"], actor="ana")
        trainer = identities.create_token("tina", actor="ana")
        viewer = identities.create_token("vic", actor="ana")
        with serve(project) as (url, serving), Client(url) as client:
            answer = client.post("/predict", {"records": records(release_project, 40)})
            assert answer.status == 200, answer.text
            ids = [p["id"] for p in answer.json()["predictions"]]
            serving.log.flush()

            # Labels are writes on the serving port too: the token's user is who sent them.
            headers = {"Authorization": f"Bearer {trainer}"}
            good = {"feedback": [{"prediction_id": i, "label": n % 2} for n, i in enumerate(ids)]}
            sent = client.request("POST", "/v1/feedback", json.dumps(good).encode(), headers)
            assert sent.status == 200, sent.text
            document = sent.json()
            assert document["ok"] and (document["new"], document["recorded"]) == (40, 40)
            assert document["received_by"] == "tina"

            for body, status, field in _bad_bodies(ids):
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                refused = client.request("POST", "/v1/feedback", raw, headers)
                assert refused.status == status, (body, refused.text)
                assert field in [p["field"] for p in refused.json()["problems"]], refused.text

            unknown_model = json.dumps({"feedback": good["feedback"][:1], "model": "nope"})
            answer = client.request("POST", "/v1/feedback", unknown_model.encode(), headers)
            assert answer.status == 404 and "nope" in answer.json()["error"]

            # The API: a trainer's token may send labels, a viewer's may not, no token: 401.
            api = "/api/v1/feedback"
            again = {"feedback": good["feedback"][:10]}
            answer = client.request("POST", api, json.dumps(again).encode(), headers)
            assert answer.status == 200, answer.text
            assert (answer.json()["replaced"], answer.json()["received_by"]) == (10, "tina")
            denied = client.request(
                "POST", api, json.dumps(again).encode(), {"Authorization": f"Bearer {viewer}"}
            )
            assert denied.status == 403 and "trainer" in denied.json()["error"]["message"]
            assert client.request("POST", api, json.dumps(again).encode()).status == 401
            bad = {"feedback": [{"prediction_id": ids[0], "label": None}]}
            answer = client.request("POST", api, json.dumps(bad).encode(), headers)
            assert answer.status == 400
            assert answer.json()["error"]["problems"] == [
                {"field": "feedback[0].label", "rule": "must not be null"}
            ]
        stored = project.metadata.feedback.labels(ids)
        assert stored == {i: n % 2 for n, i in enumerate(ids)}  # bad bodies changed nothing
        assert project.metadata.feedback.count(MODEL) == 40


def _bad_bodies(ids: list[str]) -> list[tuple[Any, int, str]]:
    """(body, status, a field the answer names) for input the endpoint must refuse."""
    one = {"prediction_id": ids[0], "label": 1}
    return [
        (b"{not json", 400, "body"),
        ([one], 400, "body"),
        ({}, 400, "feedback"),
        ({"feedback": []}, 400, "feedback"),
        ({"feedback": [one], "extra": 1}, 400, "extra"),
        ({"feedback": [one], "allow_unknown": "yes"}, 400, "allow_unknown"),
        ({"feedback": [one, {"prediction_id": ids[1], "label": None}]}, 400, "feedback[1].label"),
        ({"feedback": [one, {"prediction_id": ids[1]}]}, 400, "feedback[1].label"),
        ({"feedback": [{"prediction_id": ids[0]}]}, 400, "feedback[*].label"),
        ({"feedback": [{"prediction_id": "nope", "label": 1}]}, 400, "feedback[0].prediction_id"),
        ({"feedback": [one, {"prediction_id": ids[1], "label": [1]}]}, 400, "feedback[1].label"),
        ({"feedback": [one, 7]}, 400, "feedback[1].(record)"),
        (
            {"feedback": [one, {"prediction_id": "0190aaaaaaaa7aaa8aaaaaaaaaaaaaaa", "label": 0}]},
            400,
            "feedback[1].prediction_id",
        ),
        ({"feedback": [one] * 10_001}, 400, "feedback"),
    ]
