"""`keel drift REFERENCE CURRENT`: has any column's distribution moved? Exit 1 when one has."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from keel.cli.errors import EXIT_CHECK_FAILED, EXIT_OK
from keel.cli.output import emit, json_option
from keel.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.stats.drift import DriftResult

__all__ = ["drift"]

#: keel.stats.drift.TESTS, named here so that `--help` needs no numpy or scipy.
TEST_NAMES: Final = ("ks", "psi", "chi2", "wasserstein", "jensenshannon")


def _columns(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not names:
        raise click.BadParameter("expected column names separated by commas, like a,b")
    return names


@click.command()
@click.argument("reference")
@click.argument("current")
@click.option(
    "--test",
    type=click.Choice(TEST_NAMES),
    default=None,
    help="One test for every column it applies to (ks, wasserstein: numbers; chi2: "
    "categories; psi, jensenshannon: both). Default: per column, by type and size.",
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="The test's threshold instead of its default; needs --test (a p-value for ks "
    "and chi2, a distance for the others).",
)
@click.option(
    "--columns",
    callback=_columns,
    metavar="A,B",
    help="Only these columns (default: every column both sides have).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a self-contained HTML report with each column's distributions.",
)
@json_option
def drift(
    reference: str,
    current: str,
    test: str | None,
    threshold: float | None,
    columns: list[str] | None,
    report_path: Path | None,
    as_json: bool,
) -> int:
    """Compare CURRENT data with REFERENCE data, column by column.

    REFERENCE and CURRENT are CSV or Parquet files, globs or folders. Each column both have
    gets a drift test (see --test); numbers and categories are compared without their nulls.
    Like a test, exits 1 when any column drifted and 0 when none did, so CI can gate on it;
    2 for bad input. Needs no keel project.

    With --test, a column the test does not apply to keeps its default test; naming such a
    column in --columns is an error.
    """
    from keel.data import read_table
    from keel.stats.drift import TESTS, Skipped, compare_tables

    chosen = TESTS[test] if test is not None else None
    if threshold is not None:
        if chosen is None:
            raise click.BadParameter(
                "a threshold needs --test: the default tests mix p-values and distances, "
                "so no one number means the same for all",
                param_hint="--threshold",
            )
        if not math.isfinite(threshold) or threshold <= 0:
            raise click.BadParameter("expected a positive number", param_hint="--threshold")
        if chosen.decision == "p_value" and threshold >= 1:
            raise click.BadParameter(
                f"{chosen.name} is drifted when its p-value is below the threshold: "
                f"expected a number between 0 and 1, got {threshold:g}",
                param_hint="--threshold",
            )
    ref_table = read_table(reference)
    cur_table = read_table(current)
    shared = [n for n in ref_table.column_names if n in set(cur_table.column_names)]
    if not shared:
        raise DataError(
            f"{reference} and {current} share no column: the reference has "
            f"{_names(ref_table.column_names)}, the current data {_names(cur_table.column_names)}"
        )
    if columns is not None:
        _check_columns(columns, ref_table, cur_table, reference, current, test)
    left_out: list[Skipped] = []
    try:
        results = compare_tables(
            ref_table, cur_table, test=test, threshold=threshold, columns=columns, skipped=left_out
        )
    except ValueError as exc:  # the data disagree: a column's type differs between the sides
        raise DataError(str(exc)) from None
    skipped = [s.to_dict() for s in left_out]
    if not results:
        raise DataError(
            "no column to compare: " + "; ".join(f"{s['column']}: {s['reason']}" for s in skipped),
            hint="drift tests take numbers, categories and booleans with values on both sides",
        )
    drifted = [r.column for r in results if r.drifted]
    if report_path is not None:
        _write_report(report_path, results, ref_table, cur_table, reference, current)
    payload: dict[str, Any] = {
        "ok": not drifted,
        "reference": {"source": reference, "rows": ref_table.num_rows},
        "current": {"source": current, "rows": cur_table.num_rows},
        "columns": [r.to_dict() for r in results],
        "drifted": len(drifted),
        "drifted_columns": drifted,
        "tested": len(results),
        "skipped": skipped,
        "report": str(report_path) if report_path is not None else None,
    }
    emit(as_json, payload, lambda: _text(results, payload))
    return EXIT_CHECK_FAILED if drifted else EXIT_OK


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
                raise click.BadParameter(
                    f"{side} has no column {name!r} (it has {_names(table.column_names)})",
                    param_hint="--columns",
                )
    if test is None:
        return
    from keel.stats.drift import TESTS
    from keel.stats.sketch import column_kind

    kinds = TESTS[test].kinds
    wrong = [
        (name, kind)
        for name in columns
        if (kind := column_kind(ref_table.schema.field(name).type)) is not None
        and kind not in kinds
    ]
    if wrong:
        listed = ", ".join(f"{name} ({kind})" for name, kind in wrong)
        raise click.BadParameter(
            f"{test} does not apply to {listed}: it compares {' and '.join(sorted(kinds))} "
            "columns; drop them from --columns or leave out --test for their default test",
            param_hint="--test",
        )


def _write_report(
    path: Path,
    results: list[DriftResult],
    ref_table: pa.Table,
    cur_table: pa.Table,
    reference: str,
    current: str,
) -> None:
    from keel.monitoring.report import render_drift_report
    from keel.stats.sketch import TableSketch

    names = [r.column for r in results]
    html = render_drift_report(
        results,
        TableSketch.of(ref_table, names),
        TableSketch.of(cur_table, names),
        title=f"Drift: {Path(current).name} against {Path(reference).name}",
        reference_name=reference,
        current_name=current,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(html, encoding="utf-8")
    temporary.replace(path)


def _rule(result: DriftResult) -> str:
    if result.decision == "p_value":
        return f"p < {result.threshold:g}"
    return f"{result.decision} >= {result.threshold:g}"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value != 0 and abs(value) < 1e-4:
        return f"{value:.2e}"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"


def _text(results: list[DriftResult], payload: dict[str, Any]) -> str:
    width = max(6, *(len(r.column) for r in results))
    lines = [
        f"reference {payload['reference']['source']} ({payload['reference']['rows']:,} rows), "
        f"current {payload['current']['source']} ({payload['current']['rows']:,} rows)",
        "",
        f"{'COLUMN':<{width}}  {'TEST':<13} {'STATISTIC':>10} {'SCORE':>8} {'P-VALUE':>10}  "
        f"{'DRIFTED WHEN':<17} DRIFTED",
    ]
    for r in results:
        lines.append(
            f"{r.column:<{width}}  {r.test:<13} {_number(r.statistic):>10} "
            f"{_number(r.score):>8} {_number(r.p_value):>10}  {_rule(r):<17} "
            f"{'YES' if r.drifted else 'no'}"
        )
    for skipped in payload["skipped"]:
        lines.append(f"{skipped['column']:<{width}}  skipped: {skipped['reason']}")
    drifted = payload["drifted_columns"]
    lines.append("")
    lines.append(
        f"{len(drifted)} of {len(results)} columns drifted: {', '.join(drifted)}"
        if drifted
        else f"no drift in {len(results)} columns"
    )
    if payload["report"]:
        lines.append(f"report: {payload['report']}")
    return "\n".join(lines)
