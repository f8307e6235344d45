"""`project.drift()`: has any column of current data moved from the reference data?"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.verbs._engine import engine_spec

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.spec import EngineSpec
    from keel.stats.drift import DriftResult, Skipped
    from keel.stats.sketch import TableSketch
    from keel.workspace import Workspace

__all__ = ["DriftComparison", "drift"]


@dataclass(frozen=True)
class DriftComparison:
    """Current data (`current`, `current_rows`) compared with reference data column by
    column: one drift test result per column in `results`, the columns left out and why in
    `skipped`, and the HTML report written (`report`, None when none was asked for). `ok` is
    false when any column drifted."""

    reference: str
    reference_rows: int
    current: str
    current_rows: int
    results: tuple[DriftResult, ...]
    skipped: tuple[Skipped, ...]
    report: Path | None = None

    @property
    def drifted(self) -> list[str]:
        return [r.column for r in self.results if r.drifted]

    @property
    def ok(self) -> bool:
        return not self.drifted

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": {"source": self.reference, "rows": self.reference_rows},
            "current": {"source": self.current, "rows": self.current_rows},
            "columns": [r.to_dict() for r in self.results],
            "drifted": len(self.drifted),
            "drifted_columns": self.drifted,
            "tested": len(self.results),
            "skipped": [s.to_dict() for s in self.skipped],
            "report": str(self.report) if self.report is not None else None,
        }


def drift(
    project: Workspace | None,
    reference: str,
    current: str,
    *,
    test: str | None = None,
    threshold: float | None = None,
    columns: Sequence[str] | None = None,
    report: Path | str | None = None,
    engine: str | EngineSpec | None = None,
) -> DriftComparison:
    """Compare `current` data with `reference` data (CSV or Parquet files, globs or folders),
    column by column, as `keel drift`: each column both have gets a drift test (`test` for
    every column it applies to, else by type and size; `threshold` instead of the test's
    default needs `test`), nulls left out. `columns` limits the comparison. With `report`, a
    self-contained HTML report is written there too. Reads files only, so it needs no
    project (`keel.verbs.drift(None, ...)`).

    `engine` (`local`, `spark`, or a whole `EngineSpec`; default: the project's keel.yaml
    `engine:`, else local) says where the data is read. Local reads both sides into this
    process and compares the values exactly (`method` "exact"); Spark sketches each side on
    the cluster, partition by partition, and compares the merged sketches (`method`
    "sketch"; also `s3a://` and other paths Spark reads). On Spark, an `EngineError` when a
    job fails, `DependencyMissing` without the `spark` extra.

    An unknown test, a threshold without a test or out of its range, or a column that a side
    lacks or the test does not apply to is a `ConfigError` naming the field; data that share
    no comparable column is a `DataError`."""
    from keel.data import read_table
    from keel.errors import DataError
    from keel.stats.drift import compare_tables

    chosen = engine_spec(project, engine)
    _check_options(test, threshold)
    if chosen.kind != "local":
        return _drift_on_engine(
            chosen,
            reference,
            current,
            test=test,
            threshold=threshold,
            columns=columns,
            report=report,
        )
    ref_table = read_table(reference)
    cur_table = read_table(current)
    shared = [n for n in ref_table.column_names if n in set(cur_table.column_names)]
    if not shared:
        raise DataError(
            f"{reference} and {current} share no column: the reference has "
            f"{_names(ref_table.column_names)}, the current data {_names(cur_table.column_names)}"
        )
    names = None if columns is None else list(columns)
    if names is not None:
        _check_columns(names, ref_table, cur_table, reference, current, test)
    results, left_out = _compared(
        lambda skipped: compare_tables(
            ref_table, cur_table, test=test, threshold=threshold, columns=names, skipped=skipped
        )
    )
    path = None if report is None else Path(report)
    if path is not None:
        from keel.stats.sketch import TableSketch

        names = [r.column for r in results]
        _write_report(
            path,
            results,
            TableSketch.of(ref_table, names),
            TableSketch.of(cur_table, names),
            reference,
            current,
        )
    return DriftComparison(
        reference,
        ref_table.num_rows,
        current,
        cur_table.num_rows,
        tuple(results),
        tuple(left_out),
        path,
    )


def _drift_on_engine(
    spec: EngineSpec,
    reference: str,
    current: str,
    *,
    test: str | None,
    threshold: float | None,
    columns: Sequence[str] | None,
    report: Path | str | None,
) -> DriftComparison:
    """Both sides sketched by the engine (each partition where it lives, then merged) and
    compared from their sketches."""
    from keel.engines import engine_for
    from keel.errors import DataError
    from keel.stats.drift import compare_sketches

    runner = engine_for(spec)
    names = None if columns is None else list(columns)
    ref_sketch, ref_rows = runner.sketch(reference, names)
    cur_sketch, cur_rows = runner.sketch(current, names)
    if names is None and not any(name in cur_sketch.columns for name in ref_sketch.columns):
        raise DataError(
            f"{reference} and {current} share no column keel can compare: the reference has "
            f"{_names(list(ref_sketch.columns))}, the current data "
            f"{_names(list(cur_sketch.columns))}"
        )
    if names is not None:
        _check_kinds(names, lambda name: _sketch_kind(ref_sketch, name), test)
    results, left_out = _compared(
        lambda skipped: compare_sketches(
            ref_sketch, cur_sketch, test=test, threshold=threshold, columns=names, skipped=skipped
        )
    )
    path = None if report is None else Path(report)
    if path is not None:
        _write_report(path, results, ref_sketch, cur_sketch, reference, current)
    return DriftComparison(
        reference, ref_rows, current, cur_rows, tuple(results), tuple(left_out), path
    )


def _compared(
    compare: Callable[[list[Skipped]], list[DriftResult]],
) -> tuple[list[DriftResult], list[Skipped]]:
    """`compare`'s results and the columns it left out; `DataError` when the sides disagree
    on a column's type, or when no column could be compared."""
    from keel.errors import DataError

    left_out: list[Skipped] = []
    try:
        results = compare(left_out)
    except ValueError as exc:  # the data disagree: a column's type differs between the sides
        raise DataError(str(exc)) from None
    if not results:
        raise DataError(
            "no column to compare: " + "; ".join(f"{s.column}: {s.reason}" for s in left_out),
            hint="drift tests take numbers, categories and booleans with values on both sides",
        )
    return results, left_out


def _sketch_kind(sketch: TableSketch, name: str) -> str | None:
    column = sketch.columns.get(name)
    return None if column is None else str(column.kind)


def _problem(field: str, rule: str) -> Exception:
    from keel.errors import ConfigError

    return ConfigError(rule, problems=[(field, rule)])


def _check_options(test: str | None, threshold: float | None) -> None:
    from keel.stats.drift import TESTS

    if test is not None and test not in TESTS:
        raise _problem("test", f"expected one of {', '.join(TESTS)}, got {test!r}")
    if threshold is None:
        return
    if test is None:
        raise _problem(
            "threshold",
            "a threshold needs --test: the default tests mix p-values and distances, "
            "so no one number means the same for all",
        )
    chosen = TESTS[test]
    if not math.isfinite(threshold) or threshold <= 0:
        raise _problem("threshold", "expected a positive number")
    if chosen.decision == "p_value" and threshold >= 1:
        raise _problem(
            "threshold",
            f"{chosen.name} is drifted when its p-value is below the threshold: "
            f"expected a number between 0 and 1, got {threshold:g}",
        )


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _check_columns(
    columns: list[str],
    ref_table: pa.Table,
    cur_table: pa.Table,
    reference: str,
    current: str,
    test: str | None,
) -> None:
    for name in columns:
        for table, side in ((ref_table, reference), (cur_table, current)):
            if name not in table.column_names:
                raise _problem(
                    "columns",
                    f"{side} has no column {name!r} (it has {_names(table.column_names)})",
                )
    from keel.stats.sketch import column_kind

    _check_kinds(columns, lambda name: column_kind(ref_table.schema.field(name).type), test)


def _check_kinds(
    columns: list[str], kind_of: Callable[[str], str | None], test: str | None
) -> None:
    """`ConfigError` (field `test`) for named columns the chosen test does not apply to."""
    if test is None:
        return
    from keel.stats.drift import TESTS

    kinds = TESTS[test].kinds
    wrong = [
        (name, kind)
        for name in columns
        if (kind := kind_of(name)) is not None and kind not in kinds
    ]
    if wrong:
        listed = ", ".join(f"{name} ({kind})" for name, kind in wrong)
        raise _problem(
            "test",
            f"{test} does not apply to {listed}: it compares {' and '.join(sorted(kinds))} "
            "columns; drop them from --columns or leave out --test for their default test",
        )


def _write_report(
    path: Path,
    results: list[DriftResult],
    ref_sketch: TableSketch,
    cur_sketch: TableSketch,
    reference: str,
    current: str,
) -> None:
    from keel.monitoring.report import render_drift_report

    html = render_drift_report(
        results,
        ref_sketch,
        cur_sketch,
        title=f"Drift: {Path(current).name} against {Path(reference).name}",
        reference_name=reference,
        current_name=current,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(html, encoding="utf-8")
    temporary.replace(path)
