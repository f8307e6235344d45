"""`keel feedback [FILE]`: record delayed labels, and show performance per window."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import duration_callback, emit, json_option, parse_time

if TYPE_CHECKING:
    from keel.project import Project
    from keel.verbs import FeedbackResult, LabelRecord, WindowPerformance

__all__ = ["feedback"]


@click.command()
@click.argument(
    "file", required=False, type=click.Path(dir_okay=False, path_type=Path), metavar="[FILE]"
)
@click.option("--model", "-m", default=None, help="The model the labels are about.")
@click.option(
    "--allow-unknown",
    is_flag=True,
    help="Skip (and count) rows that name no logged prediction instead of refusing the file.",
)
@click.option(
    "--window",
    default=None,
    callback=duration_callback,
    metavar="DURATION",
    help="Window of the performance table (default: monitoring.window).",
)
@click.option("--since", default=None, metavar="TIME", help="Without FILE: the first window.")
@click.option("--until", default=None, metavar="TIME", help="Without FILE: the end (now).")
@click.option("--version", "version", type=int, default=None, help="Only this model version.")
@click.option(
    "--history",
    "history_of",
    default=None,
    metavar="PREDICTION_ID",
    help="Show every label this prediction has had, who recorded and who replaced each.",
)
@json_option
@pass_cli
def feedback(
    cli: CliContext,
    file: Path | None,
    model: str | None,
    allow_unknown: bool,
    window: timedelta | None,
    since: str | None,
    until: str | None,
    version: int | None,
    history_of: str | None,
    as_json: bool,
) -> int:
    """Record delayed labels from FILE (CSV, Parquet or JSON lines), joined to the logged
    predictions by id (or by entity key and time, as keel.yaml's monitoring.feedback says),
    then show performance and label coverage of the windows they touched. The labels are
    recorded as KEEL_USER's (or the OS user's), in one audit event per model.

    Without FILE, show performance and label coverage per window (the last 7 by default).
    A file with a malformed row changes nothing (exit 2); one naming predictions that were
    never logged changes nothing either (exit 1) unless --allow-unknown skips those rows.
    """
    if file is not None and (since is not None or until is not None):
        raise click.UsageError("--since and --until apply without FILE only")
    if history_of is not None:
        if file is not None:
            raise click.UsageError("--history takes no FILE")
        return _history(cli, history_of, as_json)
    start = parse_time(since, "--since")
    end = parse_time(until, "--until")
    project = cli.project()
    if file is None:
        return _show(project, model, window, start, end, version, as_json)
    size = window or project.spec.monitoring.window
    return _ingest(project, file, model, allow_unknown, size, version, as_json)


def _ingest(
    project: Project,
    file: Path,
    model: str | None,
    allow_unknown: bool,
    size: timedelta,
    version: int | None,
    as_json: bool,
) -> int:
    report = project.feedback(
        file, model=model, allow_unknown=allow_unknown, window=size, version=version
    )
    emit(
        as_json,
        {"ok": True, **report.to_dict()},
        lambda: _ingest_text(
            report.feedback,
            report.performance,
            report.windows_not_shown,
            report.performance_error,
        ),
    )
    return 0


def _show(
    project: Project,
    model: str | None,
    size: timedelta | None,
    start: datetime | None,
    end: datetime | None,
    version: int | None,
    as_json: bool,
) -> int:
    from keel.errors import ConfigError

    try:
        report = project.performance(
            model=model, window=size, since=start, until=end, version=version
        )
    except ConfigError as exc:
        if [field for field, _rule in exc.problems] == ["since"]:
            raise click.BadParameter("must be before --until", param_hint="--since") from None
        raise
    emit(
        as_json,
        {"ok": True, **report.to_dict()},
        lambda: _table(report.performance) or "no predictions in this range",
    )
    return 0


def _history(cli: CliContext, text: str, as_json: bool) -> int:
    from keel.verbs.explain import check_prediction_id

    check_prediction_id(text)  # a malformed id fails before opening anything
    history = cli.project().label_history(text)
    emit(
        as_json,
        {"ok": True, **history.to_dict()},
        lambda: _history_text(history.prediction_id, history.labels),
    )
    return 0


def _history_text(prediction_id: str, labels: list[LabelRecord]) -> str:
    if not labels:
        return f"no label recorded for {prediction_id}"
    rows = [("REV", "LABEL", "RECORDED (UTC)", "BY", "REPLACED (UTC)", "BY")]
    for entry in labels:
        replaced = entry.superseded_at
        rows.append(
            (
                str(entry.revision),
                json.dumps(entry.label),
                f"{entry.received_at:%Y-%m-%d %H:%M:%S}",
                entry.received_by,
                "(current)" if replaced is None else f"{replaced:%Y-%m-%d %H:%M:%S}",
                entry.superseded_by or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    return "\n".join(
        "  ".join(
            cell.rjust(width) if i == 0 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


def _ingest_text(
    result: FeedbackResult, entries: list[WindowPerformance], hidden: int, error: str | None
) -> str:
    models = ", ".join(sorted(result.models)) or "no model"
    how = "id" if result.join == "id" else "entity key and time"
    lines = [
        f"recorded {result.receipt.rows:,} of {result.rows:,} label(s) for {models} "
        f"(joined by {how}): {result.receipt.new:,} new, {result.receipt.replaced:,} replaced "
        f"({result.receipt.changed:,} changed)"
    ]
    if result.unknown:
        ids = ", ".join(result.unknown_ids)
        lines.append(
            f"skipped {result.unknown:,} row(s) that match no logged prediction"
            + (
                f": {ids}{' ...' if result.unknown > len(result.unknown_ids) else ''}"
                if ids
                else ""
            )
        )
    if error is not None:
        lines.append(f"no performance: {error}")
    elif entries:
        lines.append("")
        lines.append(_table(entries))
    if hidden:
        lines.append(
            f"({hidden} older window(s) not shown: `keel feedback --since TIME` shows them)"
        )
    return "\n".join(lines)


def _table(entries: list[WindowPerformance]) -> str:
    if not entries:
        return ""
    metric = entries[0].metric
    lines = [
        f"{'WINDOW (UTC)':<36} {'VERSION':>7} {'PREDICTIONS':>11} {'LABELLED':>9} "
        f"{'COVERAGE':>8}  {metric.upper()}"
    ]
    for entry in entries:
        span = f"{entry.start:%Y-%m-%d %H:%M} .. {entry.end:%Y-%m-%d %H:%M}"
        coverage = "-" if entry.coverage is None else f"{entry.coverage:.1%}"
        value = "-" if entry.value is None else f"{entry.value:.4f}"
        note = f"  ({entry.note})" if entry.note else ""
        number = "-" if entry.version is None else f"v{entry.version}"
        lines.append(
            f"{span:<36} {number:>7} {entry.predictions:>11,} {entry.labelled:>9,} "
            f"{coverage:>8}  {value}{note}"
        )
    return "\n".join(lines)
