"""Properties that hold for any table: self-consistency, monotone margins, lossless YAML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.contracts import (
    ColumnContract,
    Contract,
    check_contract,
    diff_contracts,
    dump_contract,
    infer_contract,
    load_contract,
)

_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def _column(kind: str, rows: int) -> st.SearchStrategy[pa.Array]:
    def maybe(values: st.SearchStrategy[object]) -> st.SearchStrategy[list[object]]:
        return st.lists(st.one_of(st.none(), values), min_size=rows, max_size=rows)

    if kind == "integer":
        values = maybe(st.integers(-(2**62), 2**62)).map(lambda v: pa.array(v, pa.int64()))
        small = maybe(st.integers(0, 3)).map(lambda v: pa.array(v, pa.int64()))
        return st.one_of(values, small)
    if kind == "float":
        finite = st.floats(allow_nan=False, allow_infinity=False)
        return maybe(finite).map(lambda v: pa.array(v, pa.float64()))
    if kind == "string":
        words = st.one_of(st.text(max_size=8), st.sampled_from(["a", "b", "NA", "yes", "01"]))
        return maybe(words).map(lambda v: pa.array(v, pa.string()))
    if kind == "boolean":
        return maybe(st.booleans()).map(lambda v: pa.array(v, pa.bool_()))
    hours = st.integers(0, 24 * 365 * 5).map(lambda h: _EPOCH + timedelta(hours=h))
    return maybe(hours).map(lambda v: pa.array(v, pa.timestamp("s", tz="UTC")))


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(1, 30))
    kinds = draw(
        st.lists(
            st.sampled_from(["integer", "float", "string", "boolean", "timestamp"]),
            min_size=1,
            max_size=5,
        )
    )
    return pa.table({f"c{i}_{kind}": draw(_column(kind, rows)) for i, kind in enumerate(kinds)})


def _now(table: pa.Table, contract: Contract) -> datetime:
    """A clock just after the newest row, so freshness holds for the reference itself."""
    if contract.timestamp is None:
        return _EPOCH
    values = [v for v in table[contract.timestamp.column].to_pylist() if v is not None]
    return max(values, default=_EPOCH) + timedelta(minutes=1)


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(tables(), st.floats(0, 1), st.floats(0, 0.5))
def test_a_table_passes_the_contract_inferred_from_itself(
    table: pa.Table, margin: float, tolerance: float
) -> None:
    contract = infer_contract(table, margin=margin, tolerance=tolerance)
    report = check_contract(table, contract, now=_now(table, contract))
    assert report.violations == (), [v.message for v in report.violations]


@_SETTINGS
@given(tables(), st.floats(0, 1), st.floats(0, 1), st.floats(0, 0.5), st.floats(0, 0.5))
def test_larger_margins_and_tolerances_only_widen(
    table: pa.Table, margin_a: float, margin_b: float, tol_a: float, tol_b: float
) -> None:
    tight = infer_contract(table, margin=min(margin_a, margin_b), tolerance=min(tol_a, tol_b))
    loose = infer_contract(table, margin=max(margin_a, margin_b), tolerance=max(tol_a, tol_b))
    for narrow, wide in zip(tight.columns, loose.columns, strict=True):
        if narrow.range is not None:
            assert wide.range is not None
            assert wide.range.min <= narrow.range.min  # type: ignore[operator]
            assert wide.range.max >= narrow.range.max  # type: ignore[operator]
        if narrow.max_null_rate is not None:
            assert wide.max_null_rate is not None
            assert wide.max_null_rate >= narrow.max_null_rate
    for change in diff_contracts(tight, loose):
        assert not change.breaking
        assert change.kind in ("range_widened", "null_rate_changed")


@_SETTINGS
@given(tables())
def test_inferred_contracts_survive_yaml(table: pa.Table) -> None:
    contract = infer_contract(table, source="hypothesis", inferred_at=_EPOCH)
    assert load_contract(dump_contract(contract)) == contract


@_SETTINGS
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-3, 3), st.just(2**62)),
            st.one_of(st.none(), st.sampled_from(["a", "b", ""])),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_duplicate_keys_are_counted_exactly(keys: list[tuple[int | None, str | None]]) -> None:
    table = pa.table({"n": pa.array([k[0] for k in keys], pa.int64()), "s": [k[1] for k in keys]})
    contract = Contract(
        columns=(ColumnContract("n", "integer"), ColumnContract("s", "string")), key=("n", "s")
    )
    expected = sum(1 for key in keys if keys.count(key) > 1)
    report = check_contract(table, contract, now=_EPOCH)
    found = [v.rows for v in report.violations if v.rule == "duplicate_key"]
    assert found == ([expected] if expected else [])
