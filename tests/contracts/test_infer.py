"""Inference heuristics on small tables: what becomes a rule, and how loose it is."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from keel.contracts import NumericRange, infer_contract
from keel.errors import ConfigError


def _hours(count: int, step: timedelta = timedelta(hours=1)) -> list[datetime]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [start + i * step for i in range(count)]


def test_nulls_give_a_rate_bound_with_tolerance_and_none_make_a_column_not_nullable() -> None:
    table = pa.table({"a": [1, None, 3, 4] * 25, "b": list(range(100))})
    contract = infer_contract(table, tolerance=0.05)
    a, b = contract.columns
    assert (a.nullable, a.max_null_rate) == (True, 0.3)
    assert (b.nullable, b.max_null_rate) == (False, None)


def test_integer_ranges_widen_by_the_margin_and_stay_non_negative() -> None:
    table = pa.table({"count": [0, 50, 100] * 10, "delta": [-10, 0, 10] * 10})
    count, delta = infer_contract(table, margin=0.1).columns
    assert count.range == NumericRange(0, 110)
    assert delta.range == NumericRange(-12, 12)


def test_float_ranges_round_outwards_to_readable_numbers() -> None:
    table = pa.table({"x": [0.123456, 0.987654, 0.5] * 10})
    (x,) = infer_contract(table, margin=0.1).columns
    assert x.range == NumericRange(0.037, 1.0741)


def test_low_cardinality_strings_and_integers_get_a_domain() -> None:
    table = pa.table(
        {
            "airport": ["JFK", "LGA", "EWR", None] * 10,
            "weekday": [1, 2, 3, 4, 5, 6, 7, 1] * 5,
            "word": [f"w{i}" for i in range(40)],
        }
    )
    airport, weekday, word = infer_contract(table, max_categories=10).columns
    assert airport.domain == ("EWR", "JFK", "LGA")
    assert weekday.domain == (1, 2, 3, 4, 5, 6, 7)
    assert word.domain is None  # every value once: not a category


def test_too_many_categories_means_no_domain() -> None:
    table = pa.table({"code": [f"c{i % 12}" for i in range(120)]})
    assert infer_contract(table, max_categories=11).columns[0].domain is None
    assert infer_contract(table, max_categories=12).columns[0].domain is not None


def test_timestamp_column_is_detected_preferring_time_like_names() -> None:
    table = pa.table(
        {
            "created": pa.array(_hours(10), pa.timestamp("s", tz="UTC")),
            "event_time": pa.array(_hours(10), pa.timestamp("s", tz="UTC")),
            "day": pa.array([date(2024, 1, 1)] * 10),
        }
    )
    contract = infer_contract(table)
    assert contract.timestamp is not None
    assert contract.timestamp.column == "event_time"


def test_a_date_column_serves_when_there_is_no_timestamp() -> None:
    table = pa.table({"day": [date(2024, 1, d) for d in range(1, 11)], "n": list(range(10))})
    contract = infer_contract(table)
    assert contract.timestamp is not None
    assert contract.timestamp.column == "day"
    assert contract.timestamp.freshness == timedelta(days=3)  # daily cadence times 3


def test_freshness_follows_the_cadence_with_a_floor() -> None:
    hourly = pa.table({"ts": pa.array(_hours(48), pa.timestamp("us"))})
    daily = pa.table({"ts": pa.array(_hours(10, timedelta(days=1)), pa.timestamp("ms"))})
    assert infer_contract(hourly).timestamp.freshness == timedelta(hours=36)  # type: ignore[union-attr]
    assert infer_contract(daily).timestamp.freshness == timedelta(days=3)  # type: ignore[union-attr]
    custom = infer_contract(hourly, freshness_floor=timedelta(hours=1), freshness_factor=2)
    assert custom.timestamp is not None
    assert custom.timestamp.freshness == timedelta(hours=2)
    given = infer_contract(hourly, freshness=timedelta(minutes=90))
    assert given.timestamp is not None
    assert given.timestamp.freshness == timedelta(minutes=90)


def test_no_timestamp_column_means_no_freshness_rule() -> None:
    assert infer_contract(pa.table({"n": [1, 2]})).timestamp is None
    with pytest.raises(ConfigError, match="no timestamp or date column"):
        infer_contract(pa.table({"n": [1, 2]}), freshness=timedelta(hours=1))


def test_an_id_column_is_taken_as_the_key() -> None:
    table = pa.table({"n": [1, 1, 2], "order_id": ["a", "b", "c"]})
    contract = infer_contract(table)
    assert contract.key == ("order_id",)


def test_a_small_all_distinct_column_without_an_id_name_is_not_a_key() -> None:
    assert infer_contract(pa.table({"n": [1, 2, 3]})).key == ()


def test_a_given_key_must_exist_and_be_unique() -> None:
    table = pa.table({"a": [1, 1, 2], "b": ["x", "y", "x"]})
    assert infer_contract(table, key=["a", "b"]).key == ("a", "b")
    with pytest.raises(ConfigError, match=r"key \(a\) is not unique in the reference data: 2 rows"):
        infer_contract(table, key=["a"])
    with pytest.raises(ConfigError, match="key column 'c' is not in the data"):
        infer_contract(table, key=["c"])


def test_a_given_timestamp_must_exist_and_hold_timestamps() -> None:
    table = pa.table({"when": ["2024-01-01"], "n": [1]})
    with pytest.raises(ConfigError, match="timestamp column 'ts' is not in the data"):
        infer_contract(table, timestamp="ts")
    with pytest.raises(ConfigError, match="timestamp column 'when' holds string") as caught:
        infer_contract(table, timestamp="when")
    assert caught.value.problems == [("timestamp", "column 'when' is not a timestamp")]


def test_rows_are_bounded_by_the_row_margin() -> None:
    contract = infer_contract(pa.table({"n": list(range(100))}), row_margin=0.25)
    assert contract.rows is not None
    assert (contract.rows.min, contract.rows.max) == (75, 125)


def test_an_all_null_column_is_a_loose_string_column() -> None:
    (column,) = infer_contract(pa.table({"x": pa.nulls(5)})).columns
    assert (column.type, column.nullable, column.max_null_rate) == ("string", True, 1.0)


@pytest.mark.parametrize(
    ("options", "problem"),
    [({"margin": -0.1}, "margin"), ({"tolerance": float("nan")}, "tolerance")],
)
def test_invalid_options_are_config_errors(options: dict[str, float], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        infer_contract(pa.table({"n": [1]}), **options)  # type: ignore[arg-type]
    assert caught.value.problems[0][0] == problem


def test_unsupported_types_and_empty_tables_are_refused() -> None:
    with pytest.raises(ConfigError, match="column 'tags' has type list<item: string>"):
        infer_contract(pa.table({"tags": [["a"], ["b"]]}))
    with pytest.raises(ConfigError, match="no rows"):
        infer_contract(pa.table({"n": pa.array([], pa.int64())}))


def test_metadata_records_the_source_and_time() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    contract = infer_contract(pa.table({"n": [1]}), source="data.csv", inferred_at=at)
    assert contract.metadata.inferred_from == "data.csv"
    assert contract.metadata.inferred_at == at
    assert contract.metadata.keel_version
