"""`keel runs list|show`: training runs, what they logged, and where they came from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import emit, json_option
from keel.domain.run import RUN_STATUSES, Run, RunStatus

__all__ = ["runs"]


@click.group()
def runs() -> None:
    """List training runs and show one with its params, metrics and lineage."""


@runs.command(name="list")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N.")
@click.option(
    "--status",
    type=click.Choice(RUN_STATUSES),
    default=None,
    help="Only runs with this status.",
)
@json_option
@pass_cli
def list_(cli: CliContext, limit: int | None, status: RunStatus | None, as_json: bool) -> int:
    """List runs, newest first.

    Runs whose process died without finishing them are marked failed first.
    """
    listed = cli.project().runs(limit=limit, status=status)
    found, reaped = listed.runs, listed.reaped
    now = datetime.now(UTC)

    def text() -> str:
        lines = [_reaped_note(reaped)] if reaped else []
        if not found:
            lines.append("no runs yet: run `keel train`, or start one from Python")
            return "\n".join(lines)
        lines.append(f"{'ID':<32}  {'STATUS':<9}  {'STARTED (UTC)':<16}  {'DURATION':>9}  USER")
        for run in found:
            lines.append(
                f"{run.id:<32}  {run.status:<9}  {run.started_at:%Y-%m-%d %H:%M}  "
                f"{_seconds(run.duration(now)):>9}  {run.user}"
            )
        return "\n".join(lines)

    emit(as_json, {"ok": True, **listed.to_dict()}, text)
    return 0


@runs.command()
@click.argument("run_id")
@json_option
@pass_cli
def show(cli: CliContext, run_id: str, as_json: bool) -> int:
    """Show a run: status, lineage, params, metrics, tags, artifacts and steps.

    RUN_ID is a run id, or at least 6 leading characters of one.
    """
    detail = cli.project().run(run_id)
    run, params, metrics, tags = detail.run, detail.params, detail.metrics, detail.tags
    artifacts, steps = detail.artifacts, detail.steps

    def text() -> str:
        lines = [
            f"run       {run.id}",
            f"status    {run.status}",
            f"started   {run.started_at:%Y-%m-%d %H:%M:%S} UTC by {run.user} "
            f"(pid {run.pid} on {run.host})",
            f"duration  {_seconds(run.duration(datetime.now(UTC)))}"
            + ("" if run.finished else " so far"),
        ]
        if run.error:
            lines.append(f"error     {run.error}")
        lines.append("lineage")
        lines += [f"  {key:<19} {_value(value)}" for key, value in run.lineage.items()]
        lines += _section("params", [f"{k} = {v}" for k, v in params.items()])
        lines += _section(
            "metrics",
            [
                f"{m.key} = {m.last:g} (step {m.step}, {m.count} point"
                f"{'' if m.count == 1 else 's'})"
                for m in metrics
            ],
        )
        lines += _section("tags", [f"{k} = {v}" for k, v in tags.items()])
        lines += _section(
            "artifacts", [f"{a.name}  {a.digest.short}  {a.size:,} bytes" for a in artifacts]
        )
        lines += _section(
            "steps",
            [
                f"{s.step:<12} {s.outcome.replace('_', ' '):<9} {s.seconds:8.2f}s"
                + ("" if s.output is None else f"  {s.output.short}")
                for s in steps
            ],
        )
        return "\n".join(lines)

    emit(as_json, {"ok": True, **detail.to_dict()}, text)
    return 0


def _section(title: str, rows: list[str]) -> list[str]:
    return [f"{title:<9} {'-' if not rows else ''}".rstrip(), *(f"  {row}" for row in rows)]


def _value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _seconds(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = max(delta.total_seconds(), 0.0)
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _reaped_note(reaped: list[Run]) -> str:
    ids = ", ".join(run.id for run in reaped)
    return f"marked failed (process gone without finishing): {ids}"
