"""`keel data snapshot|list|show|diff` as a user types them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from keel.project import Project
from tests.cli.conftest import Keel
from tests.data.conftest import FLIGHTS, copy_real, make_project, write_sample


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A project folder with the flights file and a timestamp column configured."""
    project = tmp_path / "project"
    copy_real(FLIGHTS, project / "data" / FLIGHTS.name)
    make_project(project, {"source": f"data/{FLIGHTS.name}", "timestamp": "time_hour"}).close()
    return project


def _count(project: Path) -> int:
    with Project.open(project, env={"KEEL_USER": "ana"}) as opened:
        return opened.metadata.datasets.count()


def test_snapshot_list_show_in_text(keel: Keel, folder: Path) -> None:
    first = keel("-C", folder, "data", "snapshot")
    assert first.code == 0, first.err
    assert first.out.startswith("recorded dataset ")
    assert "336,776 rows x 19 columns" in first.out
    assert "2013-01-01 10:00:00 .. 2014-01-01 04:00:00 (time_hour)" in first.out
    assert "1 file read" in first.out
    short = first.out.split()[2]
    assert len(short) == 12

    second = keel("-C", folder, "data", "snapshot")
    assert second.code == 0
    assert second.out.startswith(f"unchanged: dataset {short} (recorded ")
    assert "0 files read" in second.out

    listed = keel("-C", folder, "data", "list")
    assert listed.code == 0
    header, row = listed.out.splitlines()
    assert header.split()[:4] == ["ID", "CREATED", "ROWS", "COLS"]
    assert row.startswith(short)
    assert "336,776" in row

    shown = keel("-C", folder, "data", "show", short[:6])
    assert shown.code == 0, shown.err
    assert f"dataset   {short}" in shown.out
    assert "rows      336,776" in shown.out
    assert f"  {FLIGHTS.name}  8,200,150 bytes" in shown.out
    distance = next(line for line in shown.out.splitlines() if line.strip().startswith("distance"))
    assert "min 17" in distance and "max 4983" in distance
    carrier = next(line for line in shown.out.splitlines() if line.strip().startswith("carrier"))
    assert "16 distinct; top UA (58,665)" in carrier
    arr_delay = next(
        line for line in shown.out.splitlines() if line.strip().startswith("arr_delay")
    )
    assert "9,430" in arr_delay


def test_snapshot_list_show_in_json(keel: Keel, folder: Path) -> None:
    made = keel("-C", folder, "data", "snapshot", "--json").json()
    assert made["ok"] is True
    assert (made["reused"], made["files_read"]) == (False, 1)
    version = made["version"]
    assert version["id"].startswith("blake3:")
    assert version["rows"] == 336_776
    assert version["time_range"] == {
        "column": "time_hour",
        "start": "2013-01-01T10:00:00+00:00",
        "end": "2014-01-01T04:00:00+00:00",
    }
    assert version["files"][0]["path"] == FLIGHTS.name
    again = keel("-C", folder, "data", "snapshot", "--json").json()
    assert (again["reused"], again["files_read"], again["version"]) == (True, 0, version)

    listed = keel("-C", folder, "data", "list", "--limit", "5", "--json").json()
    assert [v["id"] for v in listed["versions"]] == [version["id"]]

    shown = keel("-C", folder, "data", "show", "latest", "--json").json()
    assert shown["version"] == version
    assert shown["profile"]["kind"] == "keel/profile"
    assert shown["profile"]["version"] == 1
    columns = {c["name"]: c for c in shown["profile"]["columns"]}
    assert (columns["distance"]["numeric"]["min"], columns["distance"]["numeric"]["max"]) == (
        17,
        4983,
    )
    assert shown["parquet_size"] > 0


def test_diff_reports_schema_rows_and_statistics(
    keel: Keel, tmp_path: Path, flights_table: pa.Table
) -> None:
    folder = tmp_path / "project"
    make_project(folder, {"source": "data/flights.csv", "timestamp": "time_hour"}).close()
    january = flights_table.filter(pc.equal(flights_table.column("month"), 1)).slice(0, 3_000)
    july = flights_table.filter(pc.equal(flights_table.column("month"), 7)).slice(0, 2_500)
    write_sample(january, folder / "data" / "flights.csv")
    old = keel("-C", folder, "data", "snapshot", "--json").json()["version"]["id"]
    # July, without `dest`, with distance in kilometres (a float now).
    without_dest = july.drop_columns(["dest"])
    changed = without_dest.set_column(
        without_dest.column_names.index("distance"),
        "distance",
        pc.multiply(july.column("distance"), 1.609344),
    )
    write_sample(changed, folder / "data" / "flights.csv")
    new = keel("-C", folder, "data", "snapshot", "--json").json()["version"]["id"]
    assert new != old

    result = keel("-C", folder, "data", "diff", old, new, "--json")
    assert result.code == 0, result.err
    diff = result.json()["diff"]
    assert diff["identical"] is False
    assert diff["rows"] == {"old": 3_000, "new": 2_500, "delta": -500}
    assert diff["schema"]["removed"] == [{"name": "dest", "type": "string"}]
    assert diff["schema"]["added"] == []
    assert diff["schema"]["retyped"] == [{"name": "distance", "old": "int64", "new": "double"}]
    assert diff["time_range"]["old"]["start"] == "2013-01-01T10:00:00+00:00"
    assert diff["time_range"]["new"]["start"].startswith("2013-07-01")
    moved = {c["name"]: c for c in diff["columns"]}
    assert moved["month"]["mean"] == {"old": 1.0, "new": 7.0}
    assert "year" not in moved  # 2013 in both: nothing moved

    text = keel("-C", folder, "data", "diff", old[7:19], "latest")
    assert text.code == 0, text.err
    assert "rows      3,000 -> 2,500 (-500)" in text.out
    assert "- dest (string)" in text.out
    assert "~ distance: int64 -> double" in text.out
    assert "mean 1 -> 7" in text.out

    same = keel("-C", folder, "data", "diff", "latest", "latest")
    assert "identical" in same.out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda folder: folder / "missing.csv", "no such file or folder"),
        (lambda folder: _empty(folder / "empty.csv"), "the file is empty"),
    ],
    ids=["missing", "empty"],
)
def test_bad_input_is_a_one_line_error_and_records_nothing(
    keel: Keel, tmp_path: Path, make: object, message: str
) -> None:
    folder = tmp_path / "project"
    make_project(folder).close()
    source = make(folder)  # type: ignore[operator]
    result = keel("-C", folder, "data", "snapshot", source)
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.err
    as_json = keel("-C", folder, "data", "snapshot", source, "--json")
    assert as_json.code == 2
    assert as_json.json()["error"]["code"] == "data_error"
    assert _count(folder) == 0


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def test_no_source_anywhere_says_what_to_do(keel: Keel, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    make_project(folder).close()
    result = keel("-C", folder, "data", "snapshot")
    assert result.code == 2
    assert "no data section" in result.err
    assert "hint: pass a file, glob or folder" in result.err


def test_unknown_and_ambiguous_refs(keel: Keel, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    make_project(folder).close()
    empty = keel("-C", folder, "data", "show", "latest")
    assert empty.code == 3
    assert "no dataset versions" in empty.err
    assert keel("-C", folder, "data", "show", "abc").code == 2
    assert keel("-C", folder, "data", "show", "abcdef12").code == 3
    assert keel("-C", folder, "data", "list").out.strip() == (
        "no dataset versions yet: run `keel data snapshot`"
    )
