"""Snapshots of a SQL query's result, on a SQLite database made from real flights."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from keel.data.snapshot import load_table, snapshot
from keel.data.sql import SQL_BATCH_ROWS
from keel.errors import ConfigError, DataError
from keel.project import Project
from keel.spec import SqlSource
from tests.data.conftest import make_project

ROWS = SQL_BATCH_ROWS + 1_000  # more than one batch: types must agree across batches
QUERY = "SELECT * FROM flights ORDER BY rowid"


def make_database(path: Path, table: pa.Table) -> None:
    """The flights sample as SQLite stores it: time_hour as ISO-8601 text, as SQLite has no
    timestamp type; numbers as INTEGER, missing values as NULL."""
    rows: list[dict[str, Any]] = table.to_pylist()
    names = table.column_names
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE flights ({', '.join(names)})")
        conn.executemany(
            f"INSERT INTO flights VALUES ({', '.join('?' for _ in names)})",  # noqa: S608 - our own column count
            [
                tuple(
                    value.isoformat().replace("+00:00", "Z")
                    if isinstance(value, datetime)
                    else value
                    for value in (row[name] for name in names)
                )
                for row in rows
            ],
        )
    conn.close()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory, flights_table: pa.Table) -> Path:
    """Built once; tests that change it get a copy."""
    path = tmp_path_factory.mktemp("sql") / "flights.db"
    make_database(path, flights_table.slice(0, ROWS))
    return path


@pytest.fixture
def sql_project(tmp_path: Path, database: Path) -> Project:
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copyfile(database, folder / "flights.db")
    spec = {"source": {"query": QUERY, "url": "sqlite:///flights.db"}, "timestamp": "time_hour"}
    return make_project(folder, spec)


def test_a_query_result_is_a_version_by_content(
    sql_project: Project, flights_table: pa.Table
) -> None:
    with sql_project as project:
        first = project.snapshot()
        version = first.version
        assert (first.reused, first.files_read) == (False, 0)
        assert version.rows == ROWS
        assert version.format == "sql"
        assert version.query == QUERY
        assert version.files == ()
        assert version.source == f"sqlite:///{project.settings.project_dir / 'flights.db'}"
        assert version.time_range is not None
        assert version.time_range.start == datetime(2013, 1, 1, 10, tzinfo=UTC)
        # The text timestamps were parsed into a timestamp column.
        assert dict(version.columns)["time_hour"] == "timestamp[us, tz=UTC]"
        table = load_table(project, version.short)
        assert (
            table.column("distance").to_pylist()
            == flights_table.column("distance").slice(0, ROWS).to_pylist()
        )
        assert (
            table.column("arr_delay").null_count
            == flights_table.column("arr_delay").slice(0, ROWS).null_count
        )

        again = project.snapshot()
        assert (again.reused, again.version) == (True, version)

        with sqlite3.connect(project.settings.project_dir / "flights.db") as conn:
            conn.execute("UPDATE flights SET distance = distance + 1 WHERE rowid = 7")
        conn.close()
        changed = project.snapshot()
        assert changed.reused is False
        assert changed.version.id != version.id
        assert project.metadata.datasets.count() == 2


def test_sql_errors_are_clear(tmp_path: Path, sql_project: Project) -> None:
    database = sql_project.settings.project_dir / "flights.db"
    cases: list[tuple[SqlSource, type[Exception], str]] = [
        (
            SqlSource(query="SELECT * FROM nowhere", url=f"sqlite:///{database}"),
            DataError,
            "no such table",
        ),
        (
            SqlSource(query="SELECT * FROM flights WHERE 0", url=f"sqlite:///{database}"),
            DataError,
            "no rows",
        ),
        (
            SqlSource(query="SELECT dest, dest FROM flights", url=f"sqlite:///{database}"),
            DataError,
            "more than once",
        ),
        (
            SqlSource(query=QUERY, url=f"sqlite:///{tmp_path / 'missing.db'}"),
            DataError,
            "no such SQLite database",
        ),
        (SqlSource(query=QUERY, url="nosuchdb://host/db"), ConfigError, "data.source.url"),
    ]
    with sql_project as project:
        for source, error, message in cases:
            with pytest.raises(error, match=message):
                snapshot(project, source)
        assert project.metadata.datasets.count() == 0
    assert not (tmp_path / "missing.db").exists()


def test_a_column_mixing_types_is_a_data_error(sql_project: Project) -> None:
    with sql_project as project:
        with sqlite3.connect(project.settings.project_dir / "flights.db") as conn:
            conn.execute("UPDATE flights SET distance = 'far' WHERE rowid = 3")
        conn.close()
        with pytest.raises(DataError, match="column 'distance' mixes types"):
            project.snapshot()
