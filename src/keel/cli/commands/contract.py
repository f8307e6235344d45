"""`keel contract infer|check|diff`: data contracts, before training and before serving."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.engine import asked_engine, engine_options
from keel.cli.errors import EXIT_CHECK_FAILED, EXIT_OK
from keel.cli.output import emit, json_option, parse_time
from keel.contracts import Contract, ContractReport, SchemaChange
from keel.contracts.report import to_plain
from keel.project import Project

__all__ = ["contract"]


def _project_for(cli: CliContext, *refs: str) -> Project | None:
    """The project, when a ref may name a dataset version; None for paths alone."""
    from keel.verbs._data import looks_like_path

    # A path needs no project: a broken keel.yaml nearby must not stop reading a file.
    return None if all(looks_like_path(ref) for ref in refs) else cli.project_or_none()


@click.group()
def contract() -> None:
    """Infer, check and compare data contracts."""


@contract.command()
@click.argument("data")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the contract here (default: print it).",
)
@click.option("--timestamp", help="The timestamp column (default: keel.yaml, else detected).")
@click.option("--key", multiple=True, help="A key column that must be unique (repeatable).")
@click.option(
    "--max-categories",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Columns with at most this many distinct values get a domain.",
)
@json_option
@pass_cli
def infer(
    cli: CliContext,
    data: str,
    output: Path | None,
    timestamp: str | None,
    key: tuple[str, ...],
    max_categories: int,
    as_json: bool,
) -> int:
    """Infer a contract from reference DATA (a CSV/Parquet file, glob, folder or dataset)."""
    from keel.verbs import contract_infer

    project = cli.project_or_none()
    # Loose files need no project: the verb then runs on its own.
    infer_from = partial(contract_infer, None) if project is None else project.contract_infer
    inferred = infer_from(
        data, output=output, timestamp=timestamp, key=list(key), max_categories=max_categories
    )
    notices, text = inferred.notices, inferred.text
    payload = {"ok": True, **inferred.to_dict()}
    if output is None and not as_json:
        # stdout is the contract itself; notices go beside it, not into it.
        for notice in notices:
            click.echo(f"notice: {notice}", err=True)
        sys.stdout.write(text)
        return EXIT_OK
    written = (
        f"wrote {output}: {len(inferred.contract.columns)} columns from {inferred.rows:,} rows "
        f"of {inferred.source}"
    )
    emit(as_json, payload, "\n".join([written, *(f"  {notice}" for notice in notices)]))
    return EXIT_OK


def _sample_text(sample: dict[str, Any], column: str | None, context: tuple[str, ...]) -> str:
    """The offending value and enough context to find the row; the full rows are in --json."""
    keys = [name for name in (column, *context) if name and name in sample]
    shown = {name: to_plain(sample[name]) for name in dict.fromkeys(keys)} or to_plain(sample)
    return ", ".join(f"{name}={value}" for name, value in shown.items())


def _render_report(
    report: ContractReport, source: str, contract_file: Path, expected: Contract
) -> str:
    context = tuple(expected.key) + ((expected.timestamp.column,) if expected.timestamp else ())
    lines = [f"{source} against {contract_file}: {report.summary()}"]
    for violation in report.violations:
        where = violation.column or "(table)"
        mark = "FAIL" if violation.severity == "error" else "warn"
        lines.append(f"  {mark} {violation.rule:<18} {where:<16} {violation.message}")
        observed = str(to_plain(violation.observed))
        expected_text = str(to_plain(violation.expected))
        lines.append(f"       observed {_clip(observed)}; expected {_clip(expected_text)}")
        for sample in violation.samples[:2]:
            lines.append(
                f"       e.g. {_clip(_sample_text(sample, violation.column, context), 140)}"
            )
    if not report.violations:
        lines.append("  every rule passed")
    return "\n".join(lines)


def _clip(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


@contract.command()
@click.argument("data")
@click.option(
    "--contract",
    "contract_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The contract (default: data.contract in keel.yaml).",
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results as JUnit XML for CI.",
)
@click.option("--now", help="Check freshness as of this time (ISO-8601; default: now).")
@click.option("--strict", is_flag=True, help="Fail on warnings too (e.g. unexpected columns).")
@engine_options("each partition's figures computed on Spark, merged and judged here")
@json_option
@pass_cli
def check(
    cli: CliContext,
    data: str,
    contract_file: Path | None,
    junit: Path | None,
    now: str | None,
    strict: bool,
    engine: str | None,
    spark_master: str | None,
    as_json: bool,
) -> int:
    """Check DATA against its contract. Exits 1 on any violation.

    With --engine spark (or keel.yaml's engine.kind: spark), DATA is read by Spark (a file,
    glob or folder, or an s3a:// or other path Spark reads) and checked partition by
    partition: the same rules, verdicts and counts, samples in Spark's partition order. A
    Spark job that fails exits 10.
    """
    from keel.spec import EngineSpec
    from keel.verbs import contract_check

    moment = parse_time(now, "--now")
    project = cli.project_or_none()
    base = project.spec.engine if project is not None else EngineSpec()
    chosen = asked_engine(base, engine, spark_master)
    # Loose files need no project: the verb then runs on its own.
    run = partial(contract_check, None) if project is None else project.contract_check
    checked = run(
        data, contract=contract_file, now=moment, strict=strict, junit=junit, engine=chosen
    )
    emit(
        as_json,
        checked.to_dict(),
        lambda: _render_report(checked.report, checked.source, checked.contract, checked.expected),
    )
    return EXIT_OK if checked.ok else EXIT_CHECK_FAILED


def _render_changes(changes: list[SchemaChange], old: str, new: str) -> str:
    if not changes:
        return f"{old} -> {new}: no schema changes"
    breaking = sum(change.breaking for change in changes)
    lines = [f"{old} -> {new}: {len(changes)} changes, {breaking} breaking"]
    for change in changes:
        mark = "BREAKING" if change.breaking else "ok      "
        lines.append(f"  {mark} {change.kind:<20} {change.column or '(table)':<16} {change.reason}")
    return "\n".join(lines)


@contract.command()
@click.argument("old")
@click.argument("new")
@json_option
@pass_cli
def diff(cli: CliContext, old: str, new: str, as_json: bool) -> int:
    """Schema changes from OLD to NEW (contract files or data). Exits 1 if any is breaking."""
    from keel.verbs import contract_diff

    project = _project_for(cli, old, new)
    compare = partial(contract_diff, None) if project is None else project.contract_diff
    compared = compare(old, new)
    emit(
        as_json,
        compared.to_dict(),
        lambda: _render_changes(compared.changes, compared.old, compared.new),
    )
    return EXIT_OK if compared.ok else EXIT_CHECK_FAILED
