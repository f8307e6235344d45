"""`keel monitor`: windows of logged predictions against the reference; `keel alerts`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.engine import chosen_engine, engine_options
from keel.cli.output import emit, json_option, parse_time
from keel.domain.duration import format_age

if TYPE_CHECKING:
    from keel.domain.monitoring import Signal

__all__ = ["alerts", "monitor"]


@click.command()
@click.option("--model", "-m", default=None, help="The model (default: the project's).")
@click.option(
    "--window",
    "-w",
    default=None,
    metavar="1h|1d|N",
    help="Window length (1h, 1d, 15m) or N predictions per window (default: monitoring.window).",
)
@click.option(
    "--by",
    "time",
    type=click.Choice(["prediction", "event"]),
    default=None,
    help="Cut duration windows by prediction time or by the requests' event time "
    "(default: monitoring.time).",
)
@click.option(
    "--windows",
    "count",
    type=click.IntRange(min=1),
    default=14,
    show_default=True,
    help="How many of the newest windows to look at.",
)
@click.option("--since", default=None, metavar="TIME", help="Every window since this time.")
@click.option(
    "--now",
    default=None,
    metavar="TIME",
    help="Judge freshness as of this time (replays, backfills); default: now.",
)
@click.option("--version", type=int, default=None, help="Compare with this version's reference.")
@click.option(
    "--dry-run", is_flag=True, help="Compute and show, but record nothing and raise no alert."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a self-contained HTML report here.",
)
@click.option("--fail-on-alert", is_flag=True, help="Exit 1 when alerts are open after the run.")
@engine_options(
    "the compacted log read and summed up per partition on Spark; duration windows only"
)
@json_option
@pass_cli
def monitor(
    cli: CliContext,
    model: str | None,
    window: str | None,
    time: str | None,
    count: int,
    since: str | None,
    now: str | None,
    version: int | None,
    dry_run: bool,
    report_path: Path | None,
    fail_on_alert: bool,
    engine: str | None,
    spark_master: str | None,
    as_json: bool,
) -> int:
    """Compare windows of logged predictions with the model's reference profile.

    Per window: drift of every feature and of the model's scores, null-rate and schema
    changes, out-of-range values and unseen categories, volume, and performance once
    feedback has arrived; then freshness. Signals are stored and raise or resolve the
    alerts of monitoring.alerts (or keel's defaults), each naming its owner.

    With --engine spark (or keel.yaml's engine.kind: spark), Spark reads the compacted log
    where the artifact store keeps it; the same windows and verdicts. A Spark job that fails
    exits 10 and records nothing.
    """
    project = cli.project()
    chosen = chosen_engine(project.spec.engine, engine, spark_master)
    report = project.monitor(
        model=model,
        window=window,
        by=time,
        windows=count,
        since=parse_time(since, "--since"),
        now=parse_time(now, "--now"),
        version=version,
        record=not dry_run,
        report=report_path,
        engine=chosen,
    )

    def text() -> str:
        lines = [
            f"{report.model}: reference v{report.version} ({report.reference_source}); "
            f"windows {report.window}"
        ]
        if not report.windows:
            lines.append("  no logged predictions in range")
        for w in report.windows:
            span = f"  {w.start:%Y-%m-%d %H:%M} .. {w.end:%Y-%m-%d %H:%M}  {w.rows:>8,} rows  "
            if w.not_judged is not None:
                lines.append(span + w.not_judged)
                continue
            performance = _performance(w.signals, w.labelled)
            coverage = f" ({w.coverage:.0%} labelled)" if w.coverage else ""
            drifted = ", ".join(c.removeprefix("inputs.") for c in w.drifted) or "none"
            breached = sorted(
                {s.name for s in w.signals if s.breached and s.name not in ("drift",)}
            )
            lines.append(
                span
                + f"drifted: {drifted}; {performance}{coverage}"
                + (f"; also: {', '.join(breached)}" if breached else "")
                + ("; partial window: volume not judged" if w.partial else "")
            )
        for signal in report.freshness:
            limit = (
                f" (limit {format_age(timedelta(seconds=signal.limit))})"
                if signal.limit is not None
                else ""
            )
            flag = "  STALE" if signal.breached else ""
            basis = signal.detail.get("measured_from")
            source = f" from {basis}" if basis else ""
            age = format_age(timedelta(seconds=signal.value or 0))
            lines.append(f"  {signal.name}: {age}{source}{limit}{flag}")
        for alert in report.opened:
            lines.append(f"  OPENED  [{alert.severity}] {alert.message} -> {alert.owner or '?'}")
        for alert in report.resolved:
            lines.append(f"  RESOLVED {alert.message}")
        lines.append(f"  open alerts: {len(report.open_alerts)}")
        if report_path is not None:
            lines.append(f"  report: {report_path}")
        return "\n".join(lines)

    emit(as_json, {"ok": True, **report.to_dict()}, text)
    return 1 if fail_on_alert and report.open_alerts else 0


@click.group()
def alerts() -> None:
    """Alerts raised by monitoring: list them, show one, resolve one by hand."""


@alerts.command("list")
@click.option("--model", "-m", default=None)
@click.option(
    "--state", type=click.Choice(["open", "resolved", "all"]), default="open", show_default=True
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
@pass_cli
def list_alerts(cli: CliContext, model: str | None, state: str, limit: int, as_json: bool) -> int:
    """Alerts, newest first, with their owner."""
    listed = cli.project().alerts(model=model, state=None if state == "all" else state, limit=limit)
    found = listed.alerts

    def text() -> str:
        if not found:
            return f"no {'' if state == 'all' else state + ' '}alerts"
        lines = []
        for a in found:
            lines.append(
                f"{a.id}  {a.state:<8} {a.severity:<8} {a.model}  {a.message}  "
                f"owner: {a.owner or 'none'}  since {a.opened_at:%Y-%m-%d %H:%M}"
            )
        return "\n".join(lines)

    emit(as_json, {"ok": True, **listed.to_dict()}, text)
    return 0


@alerts.command("show")
@click.argument("alert_id")
@json_option
@pass_cli
def show_alert(cli: CliContext, alert_id: str, as_json: bool) -> int:
    """One alert with its evidence."""
    import json

    shown = cli.project().alert(alert_id)
    alert = shown.alert

    def text() -> str:
        return "\n".join(
            [
                f"{alert.id}  {alert.state}  {alert.severity}",
                f"model:    {alert.model}" + (f"@{alert.version}" if alert.version else ""),
                f"rule:     {alert.rule} ({alert.signal} on {alert.subject or 'the model'})",
                f"message:  {alert.message}",
                f"owner:    {alert.owner or 'none'}",
                f"opened:   {alert.opened_at.isoformat()}",
                f"seen:     {alert.last_seen_at.isoformat()}",
                f"resolved: {alert.resolved_at.isoformat() if alert.resolved_at else '-'}",
                "evidence: " + json.dumps(dict(alert.evidence), indent=2, default=str),
            ]
        )

    emit(as_json, {"ok": True, **shown.to_dict()}, text)
    return 0


@alerts.command("resolve")
@click.argument("alert_id")
@click.option("--reason", required=True, help="Why it is resolved (kept in the audit log).")
@json_option
@pass_cli
def resolve_alert(cli: CliContext, alert_id: str, reason: str, as_json: bool) -> int:
    """Resolve an open alert by hand (the next monitoring run reopens it if it still fires)."""
    resolved = cli.project().resolve_alert(alert_id, reason=reason)
    emit(as_json, {"ok": True, **resolved.to_dict()}, f"resolved: {resolved.alert.message}")
    return 0


def _performance(signals: Sequence[Signal], labelled: int) -> str:
    """Every monitored metric's value, and why any has none (`rmse 151.2, mae 118.0 on 600
    labels; r2: ...`)."""
    measured = [s for s in signals if s.name == "performance"]
    if not measured:
        return "no performance yet"
    values = [f"{s.subject} {s.value:.4f}" for s in measured if s.value is not None]
    missing = [
        f"{s.subject}: {s.detail.get('note', 'not measured')}" for s in measured if s.value is None
    ]
    if not values:
        # One reason is enough when it is the same for all (no labels yet).
        reasons = sorted({m.partition(": ")[2] for m in missing})
        return "no performance yet: " + (reasons[0] if len(reasons) == 1 else "; ".join(missing))
    return f"{', '.join(values)} on {labelled:,} labels" + "".join(f"; {m}" for m in missing)
