"""`keel drift REFERENCE CURRENT`: has any column's distribution moved? Exit 1 when one has."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.engine import chosen_engine, engine_options
from keel.cli.errors import EXIT_CHECK_FAILED, EXIT_OK
from keel.cli.output import emit, json_option
from keel.errors import ConfigError

if TYPE_CHECKING:
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
@engine_options(
    "each partition sketched on Spark, the sketches compared; local compares exact values"
)
@json_option
@pass_cli
def drift(
    cli: CliContext,
    reference: str,
    current: str,
    test: str | None,
    threshold: float | None,
    columns: list[str] | None,
    report_path: Path | None,
    engine: str | None,
    spark_master: str | None,
    as_json: bool,
) -> int:
    """Compare CURRENT data with REFERENCE data, column by column.

    REFERENCE and CURRENT are CSV or Parquet files, globs or folders. Each column both have
    gets a drift test (see --test); numbers and categories are compared without their nulls.
    Like a test, exits 1 when any column drifted and 0 when none did, so CI can gate on it;
    2 for bad input. Needs no keel project.

    With --test, a column the test does not apply to keeps its default test; naming such a
    column in --columns is an error.

    With --engine spark (or keel.yaml's engine.kind: spark), REFERENCE and CURRENT may also
    be s3a:// or other paths Spark reads; each is sketched partition by partition on Spark
    and the sketches are compared (method "sketch"). A Spark job that fails exits 10.
    """
    from keel.spec import EngineSpec
    from keel.verbs import drift as compare

    # keel.yaml's engine section, when there is a project here; --engine local needs none.
    project = None if engine == "local" else cli.project_or_none()
    base = project.spec.engine if project is not None else EngineSpec()
    chosen = chosen_engine(base, engine, spark_master)
    try:
        compared = compare(
            project,
            reference,
            current,
            test=test,
            threshold=threshold,
            columns=columns,
            report=report_path,
            engine=chosen,
        )
    except ConfigError as exc:
        fields = [field for field, _rule in exc.problems]
        if len(fields) == 1 and fields[0] in {"test", "threshold", "columns"}:
            raise click.BadParameter(exc.problems[0][1], param_hint=f"--{fields[0]}") from None
        raise
    payload: dict[str, Any] = {"ok": compared.ok, **compared.to_dict()}
    emit(as_json, payload, lambda: _text(list(compared.results), payload))
    return EXIT_OK if compared.ok else EXIT_CHECK_FAILED


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
