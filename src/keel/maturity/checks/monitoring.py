"""Monitoring: is production watched, recently, with labels and alerts that reach someone?"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from keel.domain.duration import format_duration
from keel.maturity.checks.production import _item, _per_version, _Production
from keel.maturity.model import Item, Status

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__: list[str] = []


def _monitoring(project: Workspace, production: Sequence[_Production], now: datetime) -> list[Item]:
    from keel.monitoring.alerts import default_rules

    spec = project.spec
    metadata = project.metadata
    log_on = spec.serving.log.enabled
    logged = {(s.model, s.version): s.rows + s.segment_rows for s in metadata.predictions.stats()}

    def serving(p: _Production) -> tuple[Status, str]:
        rows = logged.get((p.version.model, p.version.version), 0)
        if rows == 0:
            return "partial", f"{p.ref}: no prediction logged yet"
        if not spec.monitoring.prometheus:
            return "partial", f"{p.ref}: {rows:,} predictions logged; Prometheus export off"
        return "pass", f"{p.ref}: {rows:,} predictions logged, Prometheus export on"

    if not log_on:
        serving_status: Status = "fail"
        serving_text = "serving.log.enabled is false: served predictions are not logged"
    else:
        serving_status, serving_text = _per_version(production, serving)
    serving_item = _item(
        "monitoring",
        "monitoring.serving",
        "production predictions are logged",
        serving_status,
        serving_text,
        "keel.yaml: serving.log.enabled: true, monitoring.prometheus: true; then keel serve"
        if not log_on or not spec.monitoring.prometheus
        else "keel serve (or keel predict-batch MODEL@production ...) to log predictions",
    )

    recent = 2 * spec.monitoring.window

    def monitored(p: _Production) -> tuple[Status, str]:
        metrics = metadata.monitoring.latest_metrics(p.version.model)
        moments = [m.recorded_at or m.window_end for m in metrics]
        if not moments:
            return "fail", f"{p.version.model}: never monitored"
        newest = max(moments)
        age = max(now - newest, timedelta(0))
        text = f"{p.version.model}: last monitored {_ago(age)}"
        if age > recent:
            return "partial", text + f" (older than {format_duration(recent)})"
        return "pass", text

    status, evidence = _per_version(production, monitored)
    recent_item = _item(
        "monitoring",
        "monitoring.recent",
        f"a monitor run within {format_duration(recent)} (two windows)",
        status,
        evidence,
        "keel monitor MODEL (schedule it every monitoring.window)",
    )
    rules = spec.monitoring.alerts
    if rules is None:
        alert_status: Status = "partial"
        alert_text = f"keel's {len(default_rules(spec))} default rules; none in keel.yaml"
    elif not rules:
        alert_status, alert_text = "fail", "monitoring.alerts: [] turns every alert off"
    else:
        alert_status = "pass"
        alert_text = f"{len(rules)} rule(s) in keel.yaml: " + ", ".join(r.name for r in rules)
    alerts_item = _item(
        "monitoring",
        "monitoring.alerts",
        "alert rules written in keel.yaml",
        alert_status,
        alert_text,
        "keel.yaml: monitoring.alerts: [{name, signal, threshold, owner}, ...] "
        "(keel's defaults: keel owners --json lists them)",
    )
    return [serving_item, recent_item, alerts_item]


def _ago(age: timedelta) -> str:
    """An age in its largest whole unit, as people say it."""
    for unit, size in (("d", timedelta(days=2)), ("h", timedelta(hours=1))):
        if age >= size:
            step = timedelta(days=1) if unit == "d" else size
            return f"{age // step}{unit} ago"
    if age >= timedelta(minutes=1):
        return f"{age // timedelta(minutes=1)}m ago"
    return "under a minute ago"
