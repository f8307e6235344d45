"""Which drift test a column gets, or why it gets none: one decision
(`keel.stats.drift.choose_test`) for exact tables, stored sketches, `keel drift` and the
monitoring report, in the same words everywhere."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from keel.stats.drift import (
    TESTS,
    ColumnSide,
    Skipped,
    choose_test,
    compare_sketches,
    compare_tables,
)
from keel.stats.sketch import TableSketch
from tests.fixtures.cli import Keel

FLIGHTS = (
    Path(__file__).parents[2] / "examples" / "flights" / "data" / "nycflights13_flights.csv.gz"
)


def _side(values: list[object], data_type: pa.DataType | None = None) -> ColumnSide:
    return ColumnSide.of(pa.array(values, type=data_type))


def _choice(reference: ColumnSide, current: ColumnSide, test: str | None = None) -> object:
    choice = choose_test("c", reference, current, TESTS[test] if test else None)
    return choice.reason if isinstance(choice, Skipped) else choice.name


@pytest.mark.parametrize(
    ("reference", "current", "expected"),
    [
        ([date(2013, 1, 1)], [date(2013, 12, 1)], "timestamps and dates are not tested for drift"),
        ([[1, 2]], [[3]], "no drift test for list<item: int64> values"),
        ([None, None], [None], "no drift test for null values"),
        ([1.0, 2.0], [None, None], "no value in the current data"),
        ([math.nan, math.inf], [1.0, 2.0], "no finite value on one side"),
        ([1.0, 2.0], [3.0], "ks"),
        ([float(i) for i in range(2000)], [float(i) for i in range(1500)], "wasserstein"),
        (["a", "b"], ["b", None], "chi2"),
        (["a"] * 1001, ["b"] * 1001, "jensenshannon"),
        ([True, False], [True], "chi2"),
    ],
)
def test_each_column_gets_its_test_or_its_reason(
    reference: list[object], current: list[object], expected: str
) -> None:
    assert _choice(_side(reference), _side(current)) == expected


def test_an_all_null_reference_of_a_known_type_says_so() -> None:
    assert _choice(_side([None], pa.float64()), _side([1.0])) == "no value in the reference"


def test_a_named_test_applies_where_it_takes_the_kind_and_the_default_elsewhere() -> None:
    numbers, words = _side([1.0, 2.0]), _side(["a", "b"])
    assert _choice(numbers, numbers, "psi") == "psi"
    assert _choice(words, words, "ks") == "chi2"  # ks takes numbers only


def test_sides_of_different_kinds_are_an_error_naming_the_column() -> None:
    with pytest.raises(ValueError, match="'c' is numeric in the reference but categorical"):
        choose_test("c", _side([1.0]), _side(["x"]))


def test_exact_tables_and_sketches_skip_the_same_columns_for_the_same_reasons() -> None:
    table = pcsv.read_csv(FLIGHTS).slice(0, 3000)
    reference, current = table.slice(0, 1500), table.slice(1500)
    nothing = pa.nulls(1500, pa.float64())
    reference = reference.append_column("empty", nothing)
    current = current.append_column("empty", nothing)
    from_tables: list[Skipped] = []
    exact = compare_tables(reference, current, skipped=from_tables)
    from_sketches: list[Skipped] = []
    names = reference.column_names
    sketched = compare_sketches(
        TableSketch.of(reference, names), TableSketch.of(current, names), skipped=from_sketches
    )
    assert (
        from_tables
        == from_sketches
        == [
            Skipped("time_hour", "timestamps and dates are not tested for drift"),
            Skipped("empty", "no value in the reference"),
        ]
    )
    assert [r.column for r in exact] == [r.column for r in sketched]
    assert {r.column for r in exact} | {"time_hour", "empty"} == set(names)


def test_keel_drift_lists_the_skipped_columns_as_stats_decides(keel: Keel, tmp_path: Path) -> None:
    reference, current = tmp_path / "ref.csv", tmp_path / "cur.csv"
    reference.write_text("day,delay,gone\n2013-01-01,1.5,\n2013-01-02,2.5,\n")
    current.write_text("day,delay,gone\n2013-12-01,9.0,\n2013-12-02,7.0,\n")
    document = keel("drift", reference, current, "--json").json()
    assert document["skipped"] == [
        {"column": "day", "reason": "timestamps and dates are not tested for drift"},
        {"column": "gone", "reason": "no drift test for null values"},
    ]
    assert [c["column"] for c in document["columns"]] == ["delay"]
