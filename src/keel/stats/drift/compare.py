"""Drift of every column two tables (or two table sketches) share.

    results = compare_tables(reference, current)               # exact, default tests
    results = compare_sketches(reference_sketch, window_sketch)  # from stored sketches
    drifted = [r.column for r in results if r.drifted]

Column by column, so that memory holds one column's values at a time, never a copy of a table.
For each column both sides have (in the reference's order): nulls, NaN and infinities are left
out of the distributions (null rates are a separate signal), then the column's test runs on
the rest. Left out of the results, with the reason `choose_test` gives: temporal columns and
types no test takes (lists, structs), and columns with no value on one side (nothing to
compare; the null rate says it). A column whose kind differs between the sides (numbers in
one, strings in the other) is an error.

From sketches, numbers are compared on the grid finer for the pair (`paired_supports`): the
linear one for readings far from zero relative to their spread (air pressure, ~1013 +- 7 hPa:
a bin per 0.1 hPa reading, where the log grid's buckets were ~10 hPa wide and the normed
Wasserstein score read 0.218 against 0.191 exact), the log one, every value known to 0.5% of
itself, for long tails (benchmarks/sketch_accuracy.py: within 0.003 of exact on flights' and
the weather's columns).
Categories are exact up to MAX_CATEGORIES distinct values; past that, the rest are compared
by hashed tail bucket, and differences among rare values sharing a bucket are understated
(see `DriftTest.from_sketches`).

`test` names one test for every column whose kind it takes (`TESTS`); other columns keep their
default (`default_test`), so that no column goes unwatched. `threshold` replaces the named
test's default threshold; without `test` it is an error, because the defaults mix p-values
with distances and no one number means the same for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

from keel.stats.drift.applicability import ColumnSide, Skipped, choose_test
from keel.stats.drift.base import (
    Distribution,
    DriftResult,
    DriftTest,
    Measure,
    Method,
    align_counts,
)
from keel.stats.drift.registry import TESTS
from keel.stats.sketch import ColumnSketch, TableSketch, column_kind, finite_numbers, value_counts

__all__ = ["compare_sketches", "compare_tables"]


def compare_tables(
    reference: pa.Table,
    current: pa.Table,
    *,
    test: str | None = None,
    threshold: float | None = None,
    columns: Sequence[str] | None = None,
    skipped: list[Skipped] | None = None,
) -> list[DriftResult]:
    """Exact drift results for the columns both tables share (or the named `columns`); the
    columns not compared, with the reason (`choose_test`), are appended to `skipped`."""
    chosen = _chosen(test, threshold)
    results: list[DriftResult] = []
    for name in _names(reference.column_names, current.column_names, columns):
        ref_values, cur_values = reference.column(name), current.column(name)
        kind = column_kind(ref_values.type)
        numeric: tuple[Distribution, Distribution] | None = None
        categorical: tuple[Any, Any] | None = None
        if kind == "numeric" and column_kind(cur_values.type) == kind:
            numeric = (
                Distribution.of(finite_numbers(ref_values)),
                Distribution.of(finite_numbers(cur_values)),
            )
            counts = numeric[0].total, numeric[1].total
        elif kind in ("categorical", "boolean") and column_kind(cur_values.type) == kind:
            _, r, c = align_counts(value_counts(ref_values), value_counts(cur_values))
            categorical = r, c
            counts = int(r.sum()), int(c.sum())
        else:
            counts = (
                len(ref_values) - ref_values.null_count,
                len(cur_values) - cur_values.null_count,
            )
        choice = choose_test(
            name, _side(ref_values, counts[0]), _side(cur_values, counts[1]), chosen
        )
        if isinstance(choice, Skipped):
            if skipped is not None:
                skipped.append(choice)
            continue
        # choose_test picks a test only for numbers and categories of one kind on both sides.
        assert kind is not None and (numeric is not None or categorical is not None)
        if numeric is not None:
            measure = choice.numeric(*numeric)
        else:
            assert categorical is not None
            measure = choice.categorical(*categorical)
        limit = threshold if choice is chosen else None
        results.append(_result(choice, measure, name, kind, limit, "exact", *counts))
    return results


def compare_sketches(
    reference: TableSketch,
    current: TableSketch,
    *,
    test: str | None = None,
    threshold: float | None = None,
    columns: Sequence[str] | None = None,
    skipped: list[Skipped] | None = None,
) -> list[DriftResult]:
    """Drift results from two table sketches (`method="sketch"`), as `compare_tables`."""
    chosen = _chosen(test, threshold)
    results: list[DriftResult] = []
    for name in _names(list(reference.columns), list(current.columns), columns):
        ref: ColumnSketch = reference.columns[name]
        cur: ColumnSketch = current.columns[name]
        if ref.kind != cur.kind:
            # Before anything else, dates included: a stored sketch whose kind changed is a
            # schema change the window must not hide.
            raise ValueError(
                f"column {name!r} is {ref.kind} in the reference but {cur.kind} now "
                f"({ref.arrow_type} -> {cur.arrow_type})"
            )
        choice = choose_test(name, ColumnSide.of_sketch(ref), ColumnSide.of_sketch(cur), chosen)
        if isinstance(choice, Skipped):
            if skipped is not None:
                skipped.append(choice)
            continue
        measure = choice.from_sketches(ref, cur)
        limit = threshold if choice is chosen else None
        results.append(
            _result(choice, measure, name, ref.kind, limit, "sketch", ref.values, cur.values)
        )
    return results


def _side(column: Any, values: int) -> ColumnSide:
    return ColumnSide(
        column_kind(column.type), str(column.type), len(column), column.null_count, values
    )


def _chosen(test: str | None, threshold: float | None) -> DriftTest | None:
    if test is None:
        if threshold is not None:
            raise ValueError(
                "a threshold needs a test: the default tests mix p-values and distances"
            )
        return None
    try:
        return TESTS[test]
    except KeyError:
        raise ValueError(
            f"unknown drift test {test!r}; known: {', '.join(sorted(TESTS))}"
        ) from None


def _names(
    reference: Sequence[str], current: Sequence[str], columns: Sequence[str] | None
) -> list[str]:
    if columns is None:
        shared = set(current)
        return [name for name in reference if name in shared]
    missing = [n for n in columns if n not in reference or n not in current]
    if missing:
        raise ValueError(f"column {', '.join(map(repr, missing))} is not in both tables")
    return list(columns)


def _result(
    drift_test: DriftTest,
    measure: Measure,
    column: str,
    kind: str,
    threshold: float | None,
    method: Method,
    reference_count: int,
    current_count: int,
) -> DriftResult:
    return drift_test.result(
        measure,
        column=column,
        kind=kind,
        threshold=threshold,
        reference_count=reference_count,
        current_count=current_count,
        method=method,
    )
