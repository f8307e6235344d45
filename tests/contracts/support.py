"""The real flights table, read once per test session and split into halves of the year.

Plain cached functions rather than conftest fixtures, so these tests also run with --noconftest.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from keel.contracts import Contract, infer_contract
from keel.data import read_table

_ROOT = Path(__file__).parents[2]
_CANDIDATES = (
    _ROOT / "examples" / "flights" / "data" / "nycflights13_flights.csv.gz",
    _ROOT / ".." / "shared" / "data" / "nycflights13_flights.csv.gz",
)

#: A flight is identified by its day, carrier, number and origin (checked unique in the data).
KEY = ("year", "month", "day", "carrier", "flight", "origin")
#: A clock eight hours after the last scheduled departure of 2013 (2014-01-01T04:00Z).
NOW = datetime(2014, 1, 1, 12, tzinfo=UTC)
#: The same, nine hours after the last departure of June (2013-07-01T03:00Z).
NOW_JULY = datetime(2013, 7, 1, 12, tzinfo=UTC)
INFERRED_AT = datetime(2024, 5, 1, 12, tzinfo=UTC)


def flights_path() -> Path:
    for path in _CANDIDATES:
        if path.exists():
            return path.resolve()
    pytest.skip("the nycflights13 flights file is not in examples/ or ../shared/data")


@cache
def flights() -> pa.Table:
    return read_table(flights_path())


@cache
def first_half() -> pa.Table:
    table = flights()
    return table.filter(pc.less_equal(table["month"], 6))


@cache
def second_half() -> pa.Table:
    table = flights()
    return table.filter(pc.greater(table["month"], 6))


@cache
def reference_contract() -> Contract:
    """The contract inferred from January to June, with the flight key, default tolerances."""
    return infer_contract(
        first_half(), key=KEY, source="nycflights13 flights, Jan-Jun", inferred_at=INFERRED_AT
    )


@cache
def broken() -> pa.Table:
    """July-December flights with the faults a contract catches: months outside the domain,
    a few hundred flights twice, nulls where the reference had none, departure times as text
    with a few that are not numbers, a column gone and one added."""
    table = second_half()
    table = pa.concat_tables([table, table.slice(1_000, 300)])  # repeated keys
    distance = table["distance"].to_pylist()
    for i in range(0, len(distance), 997):
        distance[i] = None
    table = table.set_column(
        table.schema.get_field_index("distance"), "distance", pa.array(distance, pa.int64())
    )
    sched = [str(v) for v in table["sched_dep_time"].to_pylist()]
    for i, bad in ((5, "N/A"), (70_000, "12b"), (150_000, "N/A"), (160_000, "?")):
        sched[i] = bad
    where = table.schema.get_field_index("sched_dep_time")
    table = table.set_column(where, "sched_dep_time", pa.array(sched, pa.string()))
    table = table.drop_columns(["minute"])
    return table.append_column("gate", pa.array([f"G{i % 40}" for i in range(table.num_rows)]))


def parse_xml(text: str) -> ET.Element:
    """Parse keel's own JUnit output: the point is to prove an XML parser accepts it."""
    return ET.fromstring(text)
