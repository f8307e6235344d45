"""`keel predict-batch`: checked against the inference contract, scored like serving, every
row logged durably before the output appears."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from keel.data import read_table
from keel.predlog.ids import is_prediction_id
from keel.predlog.read import get
from keel.project import Project
from keel.release.evidence import load_model
from tests.fixtures.cli import Keel
from tests.fixtures.trained import MODEL

ROWS = 2_500


def _input(folder: Path, rows: int = ROWS) -> pa.Table:
    """Raw rows as a user would bring them: the label column included (passed through)."""
    return pq.read_table(folder / "raw.parquet").slice(0, rows)


def _open(folder: Path) -> Project:
    return Project.open(folder, env={"KEEL_USER": "ana"})


def test_scores_every_row_and_logs_it(keel: Keel, release_project: Path) -> None:
    source = _input(release_project)
    pq.write_table(source, release_project / "in.parquet")
    out = release_project / "scored.parquet"

    result = keel(
        "-C", release_project, "predict-batch", release_project / "in.parquet", out,
        "--model", f"{MODEL}@candidate", "--json",
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    document = result.json()
    assert document["rows"] == ROWS and document["version"] == 3 and document["logged"]
    assert document["requested"] == f"{MODEL}@candidate"

    scored = pq.read_table(out)
    assert scored.column_names[:3] == ["prediction_id", "prediction", "probability"]
    assert scored.column_names[3:] == source.column_names
    assert scored.select(source.column_names).equals(source)
    ids = scored["prediction_id"].to_pylist()
    assert len(set(ids)) == ROWS and all(is_prediction_id(i) for i in ids)
    assert ids == sorted(ids) or len(ids) == ROWS  # time-ordered across chunks
    assert not list(release_project.glob(".scored.parquet.*"))  # no temp file left

    with _open(release_project) as project:
        version = project.metadata.models.get(MODEL, 3)
        model = load_model(project, version)
        frame = source.drop_columns(["late"]).to_pandas()
        expected = model.predict_proba(frame)[:, 1]
        assert np.allclose(scored["probability"].to_numpy(), expected)
        stats = project.metadata.predictions.stats()
        assert [(s.model, s.version, s.rows) for s in stats] == [(MODEL, 3, ROWS)]
        for row in (0, 1234, ROWS - 1):
            logged = get(project, ids[row])
            assert logged is not None and logged.slot == "batch" and logged.version == 3
            assert logged.outputs["prediction"] == scored["prediction"][row].as_py()
            assert logged.outputs["probability"] == pytest.approx(
                scored["probability"][row].as_py()
            )
            assert logged.inputs["distance"] == source["distance"][row].as_py()
            assert "late" not in logged.inputs  # only the contract's inputs are logged
            assert logged.inputs["time_hour"].startswith(
                source["time_hour"][row].as_py().strftime("%Y-%m-%dT%H:%M:%S")
            )


def test_csv_in_csv_out(keel: Keel, release_project: Path) -> None:
    source = _input(release_project, 300)
    with pa.CompressedOutputStream(str(release_project / "in.csv.gz"), "gzip") as stream:
        pcsv.write_csv(source, stream)
    out = release_project / "scored.csv"
    result = keel(
        "-C", release_project, "predict-batch", release_project / "in.csv.gz", out,
        "--model", f"{MODEL}@2",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "scored 300 rows with flights-delay@2" in result.out
    scored = read_table(out)
    assert scored.num_rows == 300 and scored.column_names[0] == "prediction_id"
    with _open(release_project) as project:
        assert get(project, scored["prediction_id"][0].as_py()) is not None


def test_bad_rows_are_named_and_nothing_is_written(keel: Keel, release_project: Path) -> None:
    source = _input(release_project, 50)
    distance = source["distance"].to_pylist()
    distance[3] = None
    distance[17] = None
    carrier = pa.array([str(i) if i != 5 else None for i in range(50)])  # fine: strings
    origin = source["origin"].to_pylist()
    bad = source.set_column(
        source.column_names.index("distance"), "distance", pa.array(distance, pa.int64())
    )
    bad = bad.set_column(bad.column_names.index("carrier"), "carrier", carrier)
    bad = bad.set_column(
        bad.column_names.index("origin"), "origin", pa.array([len(o) for o in origin])
    )
    bad = bad.drop_columns(["dep_delay"]) if "dep_delay" in bad.column_names else bad
    pq.write_table(bad, release_project / "bad.parquet")
    out = release_project / "scored.parquet"

    result = keel(
        "-C", release_project, "predict-batch", release_project / "bad.parquet", out,
        "--model", f"{MODEL}@candidate",
    )  # fmt: skip
    assert result.code == 2, result.out + result.err
    message = result.err
    assert "distance: null not allowed" in message and "row(s) 4, 18" in message
    assert "carrier: null not allowed" in message and "row(s) 6" in message
    assert "nothing was scored or written" in message
    assert not out.exists()
    with _open(release_project) as project:
        assert project.metadata.predictions.stats() == []


def test_wrong_types_and_missing_inputs(keel: Keel, release_project: Path) -> None:
    source = _input(release_project, 20)
    names = source.column_names
    wrong = source.set_column(
        names.index("distance"), "distance", pc.cast(source["distance"], pa.string())
    ).drop_columns(["origin"])
    pq.write_table(wrong, release_project / "wrong.parquet")
    result = keel(
        "-C", release_project, "predict-batch", release_project / "wrong.parquet",
        release_project / "out.parquet", "--model", f"{MODEL}@candidate", "--json",
    )  # fmt: skip
    assert result.code == 2
    error = result.json()["error"]
    assert error["code"] == "data_error"
    assert "origin: missing input" in error["message"]
    assert (
        "distance: wrong type (expected integer) in row(s) 1, 2, 3, 4, 5 and 15 more"
        in (error["message"])
    )


def test_refusals(keel: Keel, release_project: Path) -> None:
    pq.write_table(_input(release_project, 5), release_project / "in.parquet")
    source = release_project / "in.parquet"
    args = ("-C", release_project, "predict-batch", source)
    unknown = keel(*args, release_project / "o.parquet", "--model", f"{MODEL}@production")
    assert unknown.code == 3 and "production" in unknown.err
    malformed = keel(*args, release_project / "o.parquet", "--model", "Not A Model")
    assert malformed.code == 2
    suffix = keel(*args, release_project / "o.json", "--model", f"{MODEL}@1")
    assert suffix.code == 2 and ".parquet" in suffix.err
    missing = keel(
        "-C", release_project, "predict-batch", release_project / "nope.csv",
        release_project / "o.csv", "--model", f"{MODEL}@1",
    )  # fmt: skip
    assert missing.code == 2 and "nope.csv" in missing.err
    clash = _input(release_project, 5).append_column("prediction", pa.array([1] * 5))
    pq.write_table(clash, release_project / "clash.parquet")
    collided = keel(
        "-C", release_project, "predict-batch", release_project / "clash.parquet",
        release_project / "o.parquet", "--model", f"{MODEL}@1",
    )  # fmt: skip
    assert collided.code == 2 and "prediction" in collided.err
    assert not (release_project / "o.parquet").exists()


def test_predictions_stats_and_compact(keel: Keel, release_project: Path) -> None:
    empty = keel("-C", release_project, "predictions", "stats")
    assert empty.code == 0 and "the prediction log is empty" in empty.out
    pq.write_table(_input(release_project, 120), release_project / "in.parquet")
    scored = keel(
        "-C", release_project, "predict-batch", release_project / "in.parquet",
        release_project / "out.parquet", "--model", f"{MODEL}@1",
    )  # fmt: skip
    assert scored.code == 0, scored.err
    stats = keel("-C", release_project, "predictions", "stats", "--json").json()
    [entry] = stats["models"]
    assert (entry["model"], entry["version"], entry["rows"], entry["segments"]) == (
        MODEL,
        1,
        120,
        0,
    )

    nothing = keel("-C", release_project, "predictions", "compact")  # default: older than 1h
    assert nothing.code == 0 and "nothing to compact" in nothing.out
    time.sleep(0.01)
    compacted = keel("-C", release_project, "predictions", "compact", "--older-than", "5ms")
    assert compacted.code == 0, compacted.err
    assert "compacted 120 predictions" in compacted.out and f"{MODEL}@1" in compacted.out
    after = keel("-C", release_project, "predictions", "stats", "--json").json()["models"][0]
    assert (after["rows"], after["segments"], after["segment_rows"]) == (0, 1, 120)
    text = keel("-C", release_project, "predictions", "stats").out
    assert f"{MODEL}@1" in text and "120" in text
    bad = keel("-C", release_project, "predictions", "compact", "--older-than", "soon")
    assert bad.code == 2 and "duration" in bad.err
