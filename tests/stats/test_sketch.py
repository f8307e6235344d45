"""Column sketches: exact merges, bounded size, accurate quantiles, strict stored documents."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.stats.drift import compare_sketches
from keel.stats.sketch import (
    LINEAR_BINS,
    MAX_BUCKETS,
    MAX_CATEGORIES,
    RELATIVE_ACCURACY,
    SKETCH_KIND,
    SKETCH_VERSION,
    TAIL_BUCKETS,
    ColumnSketch,
    NumericSketch,
    TableSketch,
    column_kind,
    tail_bucket,
)
from tests.stats.support import flights

# --- numeric sketches --------------------------------------------------------------------------

#: Finite floats of every magnitude and sign, zeros and subnormals included.
any_float = st.floats(allow_nan=False, allow_infinity=False)
#: Magnitudes well within the MAX_BUCKETS range (~6e17), either sign, and zeros.
in_range = st.one_of(
    st.just(0.0),
    st.floats(min_value=1e-6, max_value=1e9),
    st.floats(min_value=-1e9, max_value=-1e-6),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(any_float, max_size=60), st.lists(any_float, max_size=60))
def test_numeric_merge_is_the_sketch_of_the_concatenation(a: list[float], b: list[float]) -> None:
    left, right = NumericSketch.of(a), NumericSketch.of(b)
    before = (left.to_dict(), right.to_dict())
    assert left.merge(right).to_dict() == NumericSketch.of(a + b).to_dict()
    assert right.merge(left).to_dict() == NumericSketch.of(b + a).to_dict()
    assert (left.to_dict(), right.to_dict()) == before  # inputs unchanged
    streamed = NumericSketch.empty()
    streamed.update(np.array(a, dtype=np.float64))
    streamed.update(np.array(b, dtype=np.float64))
    assert streamed == NumericSketch.of(a + b)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(any_float, st.integers(0, 5)), max_size=30))
def test_counted_values_are_repeated_values(pairs: list[tuple[float, int]]) -> None:
    values = np.array([v for v, _ in pairs], dtype=np.float64)
    counts = np.array([c for _, c in pairs], dtype=np.int64)
    sketch = NumericSketch.empty()
    sketch.update(values, counts)
    assert sketch == NumericSketch.of(np.repeat(values, counts))


@settings(max_examples=200, deadline=None)
@given(st.lists(any_float, max_size=80))
def test_numeric_round_trip(values: list[float]) -> None:
    sketch = NumericSketch.of(values)
    document = json.loads(json.dumps(sketch.to_dict(), allow_nan=False))
    again = NumericSketch.from_dict(document)
    assert again == sketch
    assert again.count == len(values)
    support_values, support_counts = again.support()
    assert np.all(np.diff(support_values) > 0)
    assert int(support_counts.sum()) == len(values)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(in_range, min_size=1, max_size=200),
    st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=10),
)
def test_quantiles_are_within_the_relative_accuracy(values: list[float], q: list[float]) -> None:
    sketch = NumericSketch.of(values)
    estimates = sketch.quantiles(np.array(q))
    exact = np.quantile(np.array(values), q, method="lower")
    bound = RELATIVE_ACCURACY * np.abs(exact) * (1 + 1e-9)
    assert np.all(np.abs(estimates - exact) <= bound), (estimates, exact)


def test_quantiles_of_a_million_lognormal_values() -> None:
    values = np.random.default_rng(3).lognormal(3, 2, 1_000_000)
    q = np.linspace(0, 1, 101)
    estimates = NumericSketch.of(values).quantiles(q)
    exact = np.quantile(values, q, method="lower")
    assert np.max(np.abs(estimates - exact) / exact) <= RELATIVE_ACCURACY


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=1e-3, max_value=1e5), min_size=1, max_size=100))
def test_cdf_is_exact_up_to_bucket_resolution(values: list[float]) -> None:
    sketch = NumericSketch.of(values)
    ordered = np.sort(np.array(values))
    points = np.concatenate((ordered, ordered * 1.3, [1e-4, 2e5]))
    shares = sketch.cdf(points)

    def exact(x: Any) -> Any:
        return np.searchsorted(ordered, x, side="right") / ordered.size

    slack = 1e-9
    assert np.all(exact(points / (1 + RELATIVE_ACCURACY) * (1 - slack)) <= shares)
    assert np.all(shares <= exact(points / (1 - RELATIVE_ACCURACY) * (1 + slack)))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(min_value=-300, max_value=300), min_size=1, max_size=300),
    st.lists(st.booleans(), min_size=1, max_size=300),
)
def test_size_is_bounded_on_huge_ranges(exponents: list[float], signs: list[bool]) -> None:
    sign = np.resize(np.where(np.array(signs), 1.0, -1.0), len(exponents))
    values = sign * np.power(10.0, np.array(exponents))
    sketch = NumericSketch.of(values)
    document = sketch.to_dict()
    assert len(document["positive"]["counts"]) <= MAX_BUCKETS
    assert len(document["negative"]["counts"]) <= MAX_BUCKETS
    assert sketch.count == len(exponents)
    assert NumericSketch.from_dict(document) == sketch
    # The largest magnitude keeps its accuracy: the fold only takes the smallest.
    extreme = values[np.argmax(np.abs(values))]
    support, _ = sketch.support()
    representative = support[-1] if extreme > 0 else support[0]
    assert abs(representative - extreme) <= RELATIVE_ACCURACY * abs(extreme) * (1 + 1e-9)


def test_extremes_of_float64() -> None:
    info = np.finfo(np.float64)
    values = [info.max, -info.max, info.tiny, 5e-324, -5e-324, 0.0, -0.0, 1.0]
    sketch = NumericSketch.of(values)
    assert sketch.count == len(values)
    assert (sketch.min, sketch.max) == (-info.max, info.max)
    low, high = sketch.quantiles(np.array([0.0, 1.0]))
    assert math.isclose(low, -info.max, rel_tol=RELATIVE_ACCURACY)
    assert math.isclose(high, info.max, rel_tol=RELATIVE_ACCURACY)
    assert NumericSketch.from_dict(json.loads(json.dumps(sketch.to_dict()))) == sketch


def test_update_rejects_non_finite_values() -> None:
    with pytest.raises(ValueError, match="finite"):
        NumericSketch.of([1.0, float("nan")])


def test_empty_numeric_sketch() -> None:
    sketch = NumericSketch.empty()
    assert sketch.count == 0
    assert np.isnan(sketch.quantiles(np.array([0.5]))).all()
    assert np.isnan(sketch.cdf(np.array([0.5]))).all()
    assert NumericSketch.from_dict(sketch.to_dict()) == sketch
    with pytest.raises(ValueError, match="between 0 and 1"):
        sketch.quantiles(np.array([1.5]))


# --- columns -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data_type", "kind"),
    [
        (pa.int8(), "numeric"),
        (pa.uint64(), "numeric"),
        (pa.float32(), "numeric"),
        (pa.decimal128(10, 2), "numeric"),
        (pa.string(), "categorical"),
        (pa.large_string(), "categorical"),
        (pa.dictionary(pa.int32(), pa.string()), "categorical"),
        (pa.bool_(), "boolean"),
        (pa.timestamp("ms", tz="UTC"), "temporal"),
        (pa.date32(), "temporal"),
        (pa.list_(pa.int64()), None),
        (pa.null(), None),
    ],
)
def test_kinds(data_type: Any, kind: str | None) -> None:
    assert column_kind(data_type) == kind


def test_numbers_with_nulls_nan_and_infinities() -> None:
    sketch = ColumnSketch.empty("x", pa.float64())
    sketch.update(pa.array([1.0, None, float("nan"), 3.0, float("inf"), 5.0]))
    assert (sketch.count, sketch.nulls, sketch.values) == (6, 3, 3)
    assert sketch.null_rate == 0.5
    assert (sketch.min, sketch.max, sketch.mean) == (1.0, 5.0, 3.0)
    assert sketch.std == pytest.approx(np.std([1.0, 3.0, 5.0]))
    assert sketch.numeric is not None and sketch.numeric.count == 3


def test_moments_that_overflow_are_written_as_unknown() -> None:
    sketch = ColumnSketch.empty("x", pa.float64())
    sketch.update(pa.array([1e308, 1e308, -1e308]))
    document = sketch.to_dict()
    assert document["m2"] is None
    again = ColumnSketch.from_dict(json.loads(json.dumps(document, allow_nan=False)))
    assert math.isnan(again.m2)
    assert again.to_dict() == document


def test_integers_and_decimals() -> None:
    ints = ColumnSketch.empty("n", pa.int64())
    ints.update(pa.chunked_array([[1, None, 3], [2**62, 7]]))
    assert (ints.count, ints.nulls, ints.max) == (5, 1, float(2**62))
    money = ColumnSketch.empty("m", pa.decimal128(10, 2))
    money.update(pa.array([Decimal("1.25"), None, Decimal("2.75")]))
    assert (money.values, money.mean) == (2, 2.0)


def test_categories_booleans_and_dictionaries() -> None:
    text = ColumnSketch.empty("c", pa.string())
    text.update(pa.array(["a", "b", None, "a"]))
    assert (text.categories, text.other, text.nulls) == ({"a": 2, "b": 1}, 0, 1)
    coded = ColumnSketch.empty("c", pa.dictionary(pa.int32(), pa.string()))
    coded.update(pa.chunked_array([pa.array(["a", "b"]).dictionary_encode()]))
    coded.update(pa.array(["b", None]).dictionary_encode())
    assert (coded.categories, coded.nulls) == ({"a": 1, "b": 2}, 1)
    flags = ColumnSketch.empty("f", pa.bool_())
    flags.update(pa.array([True, None, False, True]))
    assert (flags.kind, flags.categories, flags.nulls) == ("boolean", {"true": 2, "false": 1}, 1)


def test_timestamps_and_dates_keep_their_range_in_epoch_seconds() -> None:
    stamp = ColumnSketch.empty("t", pa.timestamp("us", tz="UTC"))
    stamp.update(
        pa.array([datetime(2013, 1, 1, tzinfo=UTC), None, datetime(2013, 12, 31, tzinfo=UTC)])
    )
    assert (stamp.min, stamp.max, stamp.nulls) == (1356998400.0, 1388448000.0, 1)
    day = ColumnSketch.empty("d", pa.date32())
    day.update(pa.array([date(1970, 1, 2), date(1970, 1, 1)]))
    assert (day.min, day.max) == (0.0, 86400.0)


def test_categories_beyond_the_limit_fold_into_other() -> None:
    values = [f"v{i:04d}" for i in range(MAX_CATEGORIES + 50)] + ["v0001"] * 3
    sketch = ColumnSketch.empty("c", pa.string())
    sketch.update(pa.array(values))
    assert len(sketch.categories) == MAX_CATEGORIES
    assert sketch.other == 50
    assert sketch.categories["v0001"] == 4
    # The rarest are folded, ties by value: the last names go.
    assert "v1049" not in sketch.categories and "v0998" in sketch.categories
    assert sum(sketch.categories.values()) + sketch.other == sketch.values
    # Each folded value is counted in its tail bucket.
    assert sketch.tail is not None and sum(sketch.tail.values()) == 50
    assert sketch.tail[tail_bucket("v1049")] >= 1


def _bucket_totals(sketch: ColumnSketch) -> np.ndarray:
    """How many values hash to each tail bucket, as the sketch knows it."""
    totals = sketch.tail_counts()
    assert totals is not None
    for value, count in sketch.categories.items():
        totals[tail_bucket(value)] += count
    return totals


def test_tail_buckets_stay_exact_through_merges_in_any_order() -> None:
    """Which values stay listed depends on the order batches come in; how many values hash to
    each tail bucket does not, so the drift tests can rely on it after any merge."""
    rng = np.random.default_rng(4)
    # 3,000 values, rare ones in some batches only: folds happen at different moments.
    batches = [
        pa.array([f"N{v}" for v in rng.zipf(1.3, 20_000) % 3000 + 1000 * part]) for part in range(4)
    ]
    exact = np.zeros(TAIL_BUCKETS, dtype=np.int64)
    for batch in batches:
        for value in batch.to_pylist():
            exact[tail_bucket(value)] += 1
    sketches = []
    for batch in batches:
        sketch = ColumnSketch.empty("tailnum", pa.string())
        sketch.update(batch)
        sketches.append(sketch)
    streamed = ColumnSketch.empty("tailnum", pa.string())
    for batch in reversed(batches):
        streamed.update(batch)
    forward = sketches[0].merge(sketches[1]).merge(sketches[2]).merge(sketches[3])
    pairs = sketches[3].merge(sketches[1]).merge(sketches[2].merge(sketches[0]))
    for sketch in (streamed, forward, pairs):
        assert sketch.other > 0 and len(sketch.categories) == MAX_CATEGORIES
        assert np.array_equal(_bucket_totals(sketch), exact)
        assert sum(sketch.categories.values()) + sketch.other == sketch.values == 80_000


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n: rng.normal(0, 1, n),  # every value distinct: the width from the range
        lambda rng, n: rng.pareto(0.8, n),  # five decades: the width from where values are
        lambda rng, n: np.append(rng.normal(1013, 7, n), [1e9, -1e9]),  # two far outliers
        lambda rng, n: rng.integers(-(2**40), 2**40, n).astype(float),  # wide integers
    ],
)
def test_linear_grid_merges_exactly_past_its_bin_limit(draw: Any) -> None:
    rng = np.random.default_rng(9)
    parts = [draw(rng, size) for size in (5_000, 1, 20_000, 300)]
    whole = NumericSketch.of(np.concatenate(parts))
    for order in (parts, parts[::-1], [parts[2], parts[0], parts[3], parts[1]]):
        merged = NumericSketch.empty()
        for part in order:
            merged = merged.merge(NumericSketch.of(part))
        assert merged == whole
    streamed = NumericSketch.empty()
    for part in parts:
        streamed.update(part)
    assert streamed == whole
    linear = whole.to_dict()["linear"]
    assert 0 < len(linear["counts"]) <= LINEAR_BINS
    assert sum(linear["counts"]) == whole.count


def test_offset_readings_merge_into_the_sketch_of_all_of_them() -> None:
    """Pressure-like readings, a day at a time: the linear grid of the merge is the grid of
    the concatenation (bin for bin), and fine enough to tell 0.1 hPa apart."""
    rng = np.random.default_rng(6)
    days = [np.round(rng.normal(1013 + day, 7, 5_000), 1) for day in range(5)]
    whole = NumericSketch.of(np.concatenate(days))
    merged = NumericSketch.empty()
    for day in reversed(days):
        merged = merged.merge(NumericSketch.of(day))
    assert merged == whole
    linear = whole.to_dict()["linear"]
    assert len(linear["counts"]) == len(np.unique(np.concatenate(days)))
    assert 2.0 ** linear["exponent"] < 0.1


def test_merging_different_kinds_names_the_column() -> None:
    numbers = ColumnSketch.empty("price", pa.float64())
    words = ColumnSketch.empty("price", pa.string())
    with pytest.raises(ValueError, match="'price'"):
        numbers.merge(words)
    with pytest.raises(ValueError, match="'price'"):
        numbers.update(pa.array(["a"]))


# --- tables ------------------------------------------------------------------------------------


def _tables() -> st.SearchStrategy[pa.Table]:
    # Magnitudes up to 1e12: moments of larger values overflow (tested on their own below).
    floats = st.one_of(
        st.none(), st.just(float("nan")), st.just(float("inf")), st.floats(-1e12, 1e12)
    )
    words = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"]))
    flags = st.one_of(st.none(), st.booleans())
    ints = st.one_of(st.none(), st.integers(-(2**40), 2**40))
    small = st.one_of(st.none(), st.integers(-5, 5))  # counted, not sorted
    row = st.tuples(floats, words, flags, ints, small)
    return st.lists(row, max_size=40).map(
        lambda rows: pa.table(
            {
                "x": pa.array([r[0] for r in rows], pa.float64()),
                "w": pa.array([r[1] for r in rows], pa.string()),
                "f": pa.array([r[2] for r in rows], pa.bool_()),
                "n": pa.array([r[3] for r in rows], pa.int64()),
                "k": pa.array([r[4] for r in rows], pa.int8()),
            }
        )
    )


def _without_moments(document: dict[str, Any]) -> dict[str, Any]:
    """The document without the numeric moments, which merge by float arithmetic."""
    columns = [
        {k: v for k, v in column.items() if k not in ("mean", "m2")}
        for column in document["columns"]
    ]
    return {**document, "columns": columns}


def _close(got: float, want: float, scale: float) -> bool:
    """Equal up to rounding: relative to the data's own scale, since means cancel."""
    return abs(got - want) <= 1e-12 * scale


@settings(max_examples=100, deadline=None)
@given(_tables(), _tables())
def test_table_merge_is_the_sketch_of_the_concatenation(a: pa.Table, b: pa.Table) -> None:
    table = pa.concat_tables([a, b])
    whole = TableSketch.of(table)
    merged = TableSketch.of(a).merge(TableSketch.of(b))
    streamed = TableSketch.of(a)
    streamed.update(b)
    for sketch in (merged, streamed):
        assert _without_moments(sketch.to_dict()) == _without_moments(whole.to_dict())
        for name in ("x", "n", "k"):
            values = table.column(name).to_numpy(zero_copy_only=False).astype(float)
            values = values[np.isfinite(values)]
            largest = float(np.abs(values).max()) if values.size else 0.0
            got, want = sketch.columns[name], whole.columns[name]
            assert _close(got.mean, want.mean, largest)
            assert _close(got.m2, want.m2, values.size * largest**2)


@settings(max_examples=100, deadline=None)
@given(_tables())
def test_table_round_trip(table: pa.Table) -> None:
    sketch = TableSketch.of(table)
    assert TableSketch.from_json(sketch.to_json()).to_json() == sketch.to_json()


def test_columns_that_come_and_go_count_as_missing() -> None:
    sketch = TableSketch.of(pa.table({"a": [1, 2]}))
    sketch.update(pa.table({"b": ["x", "y", "z"]}))
    sketch.update(pa.table({"a": [3], "b": pa.nulls(1)}))
    assert sketch.rows == 6
    a, b = sketch.columns["a"], sketch.columns["b"]
    assert (a.count, a.nulls, a.values) == (6, 3, 3)
    assert (b.count, b.nulls, b.categories) == (6, 3, {"x": 1, "y": 1, "z": 1})
    # An all-null column of Arrow's null type waits for a type; its rows count as missing then.
    late = TableSketch.of(pa.table({"c": pa.nulls(4)}))
    assert late.columns == {}
    late.update(pa.table({"c": [1.5]}))
    assert (late.columns["c"].count, late.columns["c"].nulls) == (5, 4)
    # Merging with a side that lacks a column: the same rule.
    merged = TableSketch.of(pa.table({"a": [1]})).merge(TableSketch.of(pa.table({"z": ["q"]})))
    assert (merged.columns["a"].nulls, merged.columns["z"].nulls, merged.rows) == (1, 1, 2)


def test_of_selects_columns_and_skips_unsupported_types() -> None:
    table = pa.table({"a": [1], "b": ["x"], "l": pa.array([[1]]), "t": [datetime(2020, 1, 1)]})
    assert list(TableSketch.of(table).columns) == ["a", "b", "t"]
    assert list(TableSketch.of(table, columns=["b"]).columns) == ["b"]
    with pytest.raises(ValueError, match="'nope'"):
        TableSketch.of(table, columns=["nope"])


def test_flights_sketch_is_compact() -> None:
    table = flights()
    sketch = TableSketch.of(table)
    for _ in range(2):  # about a million rows
        sketch.update(table)
    assert sketch.rows == 3 * table.num_rows
    sizes = {
        name: len(json.dumps(column.to_dict(), separators=(",", ":")))
        for name, column in sketch.columns.items()
    }
    # Numbers keep two grids (log and linear): a few KB each, whatever the row count.
    assert sizes["distance"] < 4_000 and sizes["dep_delay"] < 7_000
    assert max(size for name, size in sizes.items() if name != "tailnum") < 9_000
    # tailnum: 1,000 tail numbers and the other 3,000 in 4,096 hashed buckets.
    assert sizes["tailnum"] < 30_000
    assert len(sketch.to_json()) < 100_000
    document = TableSketch.from_json(sketch.to_json())
    assert document.to_json() == sketch.to_json()
    distance = sketch.columns["distance"]
    exact = table.column("distance").to_numpy()
    assert distance.mean == pytest.approx(exact.mean(), rel=1e-12)
    assert distance.std == pytest.approx(exact.std(), rel=1e-9)


def test_a_million_random_normals_fit_in_a_few_kilobytes() -> None:
    values = np.random.default_rng(5).normal(size=1_000_000)
    size = len(json.dumps(NumericSketch.of(values).to_dict(), separators=(",", ":")))
    assert size < 16_000


# --- stored documents --------------------------------------------------------------------------


def _document() -> dict[str, Any]:
    table = pa.table({"x": [1.0, -2.0, 0.0], "w": ["a", "b", None]})
    return TableSketch.of(table).to_dict()


def test_document_header() -> None:
    document = _document()
    assert (document["kind"], document["version"]) == (SKETCH_KIND, SKETCH_VERSION)
    assert TableSketch.from_dict(document).to_dict() == document


def _set(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    document = json.loads(json.dumps(document))
    target: Any = document
    *parents, last = path.split(".")
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return document


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("kind", "keel/profile", "kind: not a keel sketch"),
        ("version", 3, "version: this keel reads sketch versions 1, 2, got 3"),
        ("linear_bins", 512, "linear_bins: this keel uses 1024, got 512"),
        ("tail_buckets", 1, "tail_buckets: this keel uses 4096, got 1"),
        ("columns.0.sketch.linear", _DELETE, r"columns\[0\].sketch.linear: required"),
        ("columns.0.sketch.linear.counts", [1, 1], r"sketch.linear.steps: one fewer than counts"),
        ("columns.0.sketch.linear.steps", [0, 1], r"sketch.linear.steps: expected a list of pos"),
        ("columns.0.sketch.linear.stride", 0, r"sketch.linear.stride: must be at least 1"),
        ("columns.0.sketch.linear.counts", [1, 1, 2], r"sketch.linear.counts: must add up to"),
        ("columns.1.tail", _DELETE, r"columns\[1\].tail: required"),
        (
            "columns.1.tail",
            {"buckets": [0], "counts": [1]},
            r"columns\[1\].tail.counts: must add up to other \(0\), got 1",
        ),
        ("max_buckets", 2048, "max_buckets: this keel uses 4096, got 2048"),
        ("rows", -1, "sketch.rows: must be at least 0"),
        ("columns", {}, "columns: expected a list"),
        ("columns.0.kind", "text", r"columns\[0\].kind: expected one of"),
        ("rows", 4, r"columns\[0\].count: must equal rows \(4\), got 3"),
        ("columns.0.nulls", 9, r"columns\[0\].nulls: at most count"),
        ("columns.0.mean", _DELETE, r"columns\[0\].mean: required"),
        ("columns.0.sketch.relative_accuracy", 0.01, r"columns\[0\].sketch.relative_accuracy"),
        ("columns.0.sketch.count", 5, r"columns\[0\].sketch.count: must equal"),
        ("columns.0.sketch.positive.counts", [1, -1], r"sketch.positive.counts: expected a list"),
        ("columns.0.sketch.positive.offset", "0", r"sketch.positive.offset: expected an integer"),
        ("columns.0.sketch.min", None, r"columns\[0\].sketch.min, max: required"),
        ("columns.1.categories", {"a": 0}, r"columns\[1\].categories: expected an object"),
        ("columns.1.other", 3, r"columns\[1\].categories: counts and other must add up"),
        ("columns.1.name", "x", r"columns\[1\].name: column 'x' appears twice"),
    ],
)
def test_malformed_documents_name_the_field_and_rule(path: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TableSketch.from_dict(_set(_document(), path, value))


def test_tail_documents_name_the_field_and_rule() -> None:
    values = [f"v{i:04d}" for i in range(MAX_CATEGORIES + 3)]
    document = TableSketch.of(pa.table({"w": values})).to_dict()
    assert document["columns"][0]["other"] == 3
    assert TableSketch.from_dict(document).to_dict() == document
    for path, value, message in [
        ("columns.0.tail.counts", [1, 1, 2], r"tail.counts: must add up to other \(3\)"),
        ("columns.0.tail.buckets", [TAIL_BUCKETS, 1, 1], r"tail.buckets: ascending buckets"),
        ("columns.0.tail.buckets", [0, 0, 1], r"tail.buckets: ascending buckets"),
        ("columns.0.tail", {"buckets": []}, r"tail.counts: expected a list"),
    ]:
        with pytest.raises(ValueError, match=message):
            TableSketch.from_dict(_set(document, path, value))


# --- version 1 documents: reference sketches of models registered before ----------------------

#: Written by keel's version 1 sketches (the last release without linear grids and tails),
#: from the table `_version_one_table` builds.
VERSION_ONE = Path(__file__).parent / "data" / "sketch-v1.json"


def _version_one_table() -> pa.Table:
    rng = np.random.default_rng(19)
    n = 20_000
    rare = rng.integers(0, 1500, n)
    return pa.table(
        {
            "pressure": np.round(rng.normal(1013.0, 7.0, n), 1),
            "delay": rng.geometric(0.05, n).astype(np.int64) - 5,
            "tailnum": pa.array([f"N{v:04d}" for v in rare]),
            "cancelled": pa.array(rng.random(n) < 0.1),
            "at": pa.array(
                np.datetime64("2013-01-01T00:00:00")
                + rng.integers(0, 86400 * 90, n).astype("timedelta64[s]")
            ).cast(pa.timestamp("s", tz="UTC")),
        }
    )


def test_version_one_documents_still_read_and_compare() -> None:
    stored = VERSION_ONE.read_bytes()
    assert json.loads(stored)["version"] == 1
    old = TableSketch.from_json(stored)
    assert old.rows == 20_000 and list(old.columns) == [
        "pressure",
        "delay",
        "tailnum",
        "cancelled",
        "at",
    ]
    pressure, tailnum = old.columns["pressure"], old.columns["tailnum"]
    assert pressure.numeric is not None and not pressure.numeric.has_linear
    assert tailnum.other > 0 and tailnum.tail is None and tailnum.tail_counts() is None
    # The same rows sketched today: everything version 1 knew is unchanged.
    new = TableSketch.of(_version_one_table())
    for name, column in old.columns.items():
        assert (column.count, column.nulls, column.categories, column.other) == (
            new.columns[name].count,
            new.columns[name].nulls,
            new.columns[name].categories,
            new.columns[name].other,
        )
    assert pressure.numeric == _log_only(new.columns["pressure"].numeric)
    # A stored reference against a window sketched now: the same rows show no drift.
    results = compare_sketches(old, new)
    assert [r.column for r in results] == ["pressure", "delay", "tailnum", "cancelled"]
    assert not any(r.drifted for r in results)
    # Merged with a new sketch, what only version 2 knows is unknown, and written as such.
    merged = old.merge(new)
    assert merged.rows == 40_000
    assert not merged.columns["pressure"].numeric.has_linear  # type: ignore[union-attr]
    assert merged.columns["tailnum"].tail is None
    document = merged.to_dict()
    assert document["version"] == SKETCH_VERSION == 2
    assert TableSketch.from_dict(document) == merged


def _log_only(sketch: NumericSketch | None) -> NumericSketch:
    assert sketch is not None
    document = sketch.to_dict()
    del document["linear"]
    return NumericSketch.from_dict(document, version=1)


def test_malformed_json() -> None:
    with pytest.raises(ValueError, match="invalid JSON"):
        TableSketch.from_json(b"{")
    with pytest.raises(ValueError, match="expected an object"):
        TableSketch.from_json(b"[]")
