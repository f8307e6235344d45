"""`keel contract infer|check|diff`: data contracts, before training and before serving."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.errors import EXIT_CHECK_FAILED, EXIT_OK
from keel.cli.output import emit, json_option, parse_time
from keel.contracts import (
    Contract,
    ContractReport,
    SchemaChange,
    diff_contracts,
    dump_contract,
    infer_contract,
    load_contract,
    read_contract,
)
from keel.contracts.report import to_plain

__all__ = ["contract"]


def _load_data(cli: CliContext, ref: str) -> tuple[Any, str, list[str]]:
    """A table from a file, glob or folder; or, inside a project, a dataset version ref; and
    notices of the source columns left out of it (row indexes)."""
    from keel.verbs._data import load_data, looks_like_path

    # A path needs no project: a broken keel.yaml nearby must not stop reading a file.
    return load_data(None if looks_like_path(ref) else cli.project_or_none(), ref)


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
    project = cli.project_or_none()
    if timestamp is None and project is not None and project.spec.data is not None:
        timestamp = project.spec.data.timestamp
    table, source, notices = _load_data(cli, data)
    inferred = infer_contract(
        table,
        timestamp=timestamp,
        key=list(key) or None,
        max_categories=max_categories,
        source=source,
        inferred_at=datetime.now(UTC),
    )
    notices.extend(_stale_notice(table, inferred))
    text = dump_contract(inferred)
    if output is not None:
        from keel.contracts import write_contract

        write_contract(inferred, output)
    payload = {
        "ok": True,
        "source": source,
        "rows": table.num_rows,
        "columns": len(inferred.columns),
        "output": str(output) if output else None,
        "contract": text,
        "notices": notices,
    }
    if output is None and not as_json:
        # stdout is the contract itself; notices go beside it, not into it.
        for notice in notices:
            click.echo(f"notice: {notice}", err=True)
        sys.stdout.write(text)
        return EXIT_OK
    written = (
        f"wrote {output}: {len(inferred.columns)} columns from {table.num_rows:,} rows of {source}"
    )
    emit(as_json, payload, "\n".join([written, *(f"  {notice}" for notice in notices)]))
    return EXIT_OK


def _stale_notice(table: Any, contract: Any) -> list[str]:
    """Data from the past (a public table, a backfill) breaks the freshness rule inferred for
    it from the start: say so now, not at the first `keel train`."""
    from keel.contracts import check_contract

    if contract.timestamp is None:
        return []
    report = check_contract(table, contract, now=datetime.now(UTC))
    for violation in report.errors:
        if violation.rule == "stale" and isinstance(violation.observed, dict):
            newest = violation.observed.get("newest")
            if not isinstance(newest, datetime):
                continue
            moment = newest.astimezone(UTC).isoformat().replace("+00:00", "Z")
            return [
                f"the newest {contract.timestamp.column} is {violation.observed.get('age')} old, "
                f"older than timestamp.freshness allows: this data is stale today, so train it "
                f"as of its time (`keel train --as-of {moment}`), or loosen the rule"
            ]
    return []


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
@json_option
@pass_cli
def check(
    cli: CliContext,
    data: str,
    contract_file: Path | None,
    junit: Path | None,
    now: str | None,
    strict: bool,
    as_json: bool,
) -> int:
    """Check DATA against its contract. Exits 1 on any violation."""
    from keel.verbs import contract_check

    moment = parse_time(now, "--now")
    project = cli.project_or_none()
    # Loose files need no project: the verb then runs on its own.
    run = partial(contract_check, None) if project is None else project.contract_check
    checked = run(data, contract=contract_file, now=moment, strict=strict, junit=junit)
    emit(
        as_json,
        checked.to_dict(),
        lambda: _render_report(checked.report, checked.source, checked.contract, checked.expected),
    )
    return EXIT_OK if checked.ok else EXIT_CHECK_FAILED


def _contract_from(cli: CliContext, ref: str) -> tuple[Contract, str]:
    """A contract file, or a contract inferred from data (a file or a dataset version)."""
    path = Path(ref)
    if path.suffix in {".yaml", ".yml"}:
        return read_contract(path), ref
    if path.is_file() and path.stat().st_size < 4 * 1024 * 1024:
        head = path.read_bytes()[:4096]
        if b"keel/contract" in head:
            return load_contract(path.read_text("utf-8"), source=ref), ref
    table, source, _ = _load_data(cli, ref)
    return infer_contract(table, source=source), source


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
    before, old_name = _contract_from(cli, old)
    after, new_name = _contract_from(cli, new)
    changes = diff_contracts(before, after)
    breaking = any(change.breaking for change in changes)
    payload = {
        "ok": not breaking,
        "old": old_name,
        "new": new_name,
        "changes": [
            {
                "kind": change.kind,
                "column": change.column,
                "breaking": change.breaking,
                "reason": change.reason,
                "old": to_plain(change.old),
                "new": to_plain(change.new),
            }
            for change in changes
        ],
    }
    emit(as_json, payload, lambda: _render_changes(changes, old_name, new_name))
    return EXIT_CHECK_FAILED if breaking else EXIT_OK
