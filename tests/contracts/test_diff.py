"""Contract diffs: what changed, and whether it breaks readers of the old contract."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from keel.contracts import (
    ColumnContract,
    Contract,
    NumericRange,
    RowBounds,
    TimestampRule,
    diff_contracts,
)

OLD = Contract(
    columns=(
        ColumnContract("id", "integer", nullable=False),
        ColumnContract("ts", "timestamp", nullable=False),
        ColumnContract("price", "float", range=NumericRange(0, 100)),
        ColumnContract("count", "integer", nullable=False, range=NumericRange(0, 10)),
        ColumnContract("kind", "string", domain=("a", "b")),
    ),
    key=("id",),
    timestamp=TimestampRule("ts", timedelta(hours=36)),
    rows=RowBounds(10, 20),
)


def _with(name: str, **changes: object) -> Contract:
    columns = tuple(
        replace(column, **changes) if column.name == name else column  # type: ignore[arg-type]
        for column in OLD.columns
    )
    return replace(OLD, columns=columns)


def _one(new: Contract) -> tuple[str, str | None, bool]:
    (change,) = diff_contracts(OLD, new)
    return change.kind, change.column, change.breaking


def test_identical_contracts_have_no_changes() -> None:
    assert diff_contracts(OLD, OLD) == []


def test_removed_column_is_breaking_and_added_column_is_not() -> None:
    removed = replace(OLD, columns=OLD.columns[:-1])
    assert _one(removed) == ("column_removed", "kind", True)
    added = replace(OLD, columns=(*OLD.columns, ColumnContract("new", "string")))
    assert _one(added) == ("column_added", "new", False)


@pytest.mark.parametrize(
    ("name", "old", "new", "breaking"),
    [
        ("count", "integer", "float", True),
        ("price", "float", "integer", False),
        ("kind", "string", "integer", True),
    ],
)
def test_retyped_columns(name: str, old: str, new: str, breaking: bool) -> None:
    changed = _with(name, type=new, range=None, domain=None)
    kinds = {c.kind: c for c in diff_contracts(OLD, changed)}
    assert kinds["type_changed"].breaking is breaking
    assert kinds["type_changed"].old == old


def test_nullability_loosened_is_breaking_tightened_is_not() -> None:
    assert _one(_with("count", nullable=True)) == ("nullability_changed", "count", True)
    assert _one(_with("price", nullable=False)) == ("nullability_changed", "price", False)


def test_domain_widened_and_narrowed_are_not_breaking() -> None:
    widened = diff_contracts(OLD, _with("kind", domain=("a", "b", "c")))
    assert [(c.kind, c.breaking) for c in widened] == [("domain_widened", False)]
    assert "'c'" in widened[0].reason
    assert _one(_with("kind", domain=("a",))) == ("domain_narrowed", "kind", False)
    assert _one(_with("kind", domain=("a", "c"))) == ("domain_changed", "kind", False)
    assert _one(_with("kind", domain=None)) == ("domain_widened", "kind", False)
    assert diff_contracts(OLD, _with("kind", domain=("b", "a"))) == []


def test_ranges_widened_narrowed_or_moved() -> None:
    assert _one(_with("price", range=NumericRange(-5, 100))) == ("range_widened", "price", False)
    assert _one(_with("price", range=NumericRange(None, 100))) == ("range_widened", "price", False)
    assert _one(_with("price", range=NumericRange(10, 90))) == ("range_narrowed", "price", False)
    assert _one(_with("price", range=NumericRange(10, 200))) == ("range_changed", "price", False)


def test_table_level_changes() -> None:
    assert _one(replace(OLD, key=())) == ("key_changed", None, True)
    assert _one(replace(OLD, key=("id", "ts"))) == ("key_changed", None, True)
    assert _one(replace(OLD, rows=RowBounds(5, 50))) == ("rows_changed", None, False)
    looser = replace(OLD, timestamp=TimestampRule("ts", timedelta(days=3)))
    assert _one(looser) == ("freshness_changed", "ts", False)
    assert _one(replace(OLD, timestamp=None)) == ("timestamp_changed", None, True)


def test_a_stricter_key_is_not_breaking() -> None:
    wide = replace(OLD, key=("id", "ts"))
    (change,) = diff_contracts(wide, OLD)
    assert (change.kind, change.breaking) == ("key_changed", False)
