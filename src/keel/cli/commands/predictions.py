"""`keel predictions stats|compact`: what the prediction log holds, and compacting it."""

from __future__ import annotations

from datetime import timedelta

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import duration_callback, emit, json_option
from keel.domain.duration import format_duration

__all__ = ["predictions"]


def _size(size: int) -> str:
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"  # unreachable: the loop returns at GB


@click.group()
def predictions() -> None:
    """What the prediction log holds; compact closed time ranges into Parquet segments."""


@predictions.command()
@json_option
@pass_cli
def stats(cli: CliContext, as_json: bool) -> int:
    """Rows and segments per model version."""
    report = cli.project().prediction_stats()
    found = report.models

    def text() -> str:
        if not found:
            return "the prediction log is empty: `keel serve` and `keel predict-batch` fill it"
        lines = [
            f"{'MODEL@VERSION':<28} {'RECENT':>10} {'SEGMENTS':>8} {'COMPACTED':>11} "
            f"{'SIZE':>9}  FIRST .. LAST (UTC)"
        ]
        for entry in found:
            span = (
                f"{entry.first_at:%Y-%m-%d %H:%M} .. {entry.last_at:%Y-%m-%d %H:%M}"
                if entry.first_at and entry.last_at
                else "-"
            )
            lines.append(
                f"{entry.model + '@' + str(entry.version):<28} {entry.rows:>10,} "
                f"{entry.segments:>8,} {entry.segment_rows:>11,} "
                f"{_size(entry.segment_bytes):>9}  {span}"
            )
        return "\n".join(lines)

    emit(as_json, {"ok": True, **report.to_dict()}, text)
    return 0


@predictions.command()
@click.option(
    "--older-than",
    "older_than",
    default="1h",
    show_default=True,
    callback=duration_callback,
    metavar="DURATION",
    help="Compact predictions older than this (200ms, 30s, 15m, 1h, 7d).",
)
@json_option
@pass_cli
def compact(cli: CliContext, older_than: timedelta, as_json: bool) -> int:
    """Move predictions older than --older-than into Parquet segments in the artifact store.

    Safe to run while `keel serve` logs, and to interrupt: rows are deleted only in the
    transaction that indexes the segment holding them.
    """
    report = cli.project().compact_predictions(older_than=older_than)

    def text() -> str:
        if not report.segments:
            return f"nothing to compact: no predictions older than {format_duration(older_than)}"
        size = sum(s.size for s in report.segments)
        lines = [
            f"compacted {report.rows:,} predictions older than {report.before:%Y-%m-%d %H:%M:%S} "
            f"UTC into {len(report.segments)} segment(s), {_size(size)}"
        ]
        for segment in report.segments:
            lines.append(
                f"  {segment.model}@{segment.version}  {segment.rows:>9,} rows  "
                f"{segment.first_at:%Y-%m-%d %H:%M} .. {segment.last_at:%Y-%m-%d %H:%M}  "
                f"{segment.digest.short}"
            )
        return "\n".join(lines)

    emit(as_json, report.to_dict(), text)
    return 0
