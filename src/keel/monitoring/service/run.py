"""`monitor`: read the windows, judge them, measure freshness, record signals and alerts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from keel.errors import NotFound
from keel.monitoring.alerts import JudgedWindow, effective_rules, evaluate_rules
from keel.monitoring.model import MonitorReport
from keel.monitoring.service.freshness import _freshness
from keel.monitoring.service.judging import _judge
from keel.monitoring.service.plan import DEFAULT_WINDOWS, WindowPlan
from keel.monitoring.service.reading import _read_windows, _WindowState
from keel.monitoring.service.recording import _record
from keel.monitoring.service.serving_skew import _with_skew

if TYPE_CHECKING:
    from keel.domain.model import ModelVersion
    from keel.spec import EngineSpec
    from keel.workspace import Workspace

__all__ = ["monitor"]


def monitor(
    project: Workspace,
    *,
    model: str | None = None,
    plan: WindowPlan | None = None,
    windows: int = DEFAULT_WINDOWS,
    since: datetime | None = None,
    now: datetime | None = None,
    version: int | None = None,
    record: bool = True,
    actor: str | None = None,
    engine: EngineSpec | None = None,
) -> MonitorReport:
    """Monitor `model` over its last `windows` windows (or since `since`) and, with
    `record`, store the signals and raise or resolve alerts. With a Spark `engine`, the
    compacted log is read on Spark (the windows are the same)."""
    from keel.models.reference import reference_for

    spec = project.spec
    name = model or spec.name
    plan = plan or WindowPlan(duration=spec.monitoring.window, time=spec.monitoring.time)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    reference_version = _reference_version(project, name, version)
    reference = reference_for(project, reference_version)
    columns = [*reference.features, *reference.outputs]
    log_stats = [s for s in project.metadata.predictions.stats() if s.model == name]
    newest = max((s.last_at for s in log_stats if s.last_at is not None), default=None)
    oldest = min((s.first_at for s in log_stats if s.first_at is not None), default=None)

    states: list[_WindowState] = []
    if newest is not None and oldest is not None and engine is not None and engine.kind == "spark":
        from keel.monitoring.service.spark import _read_windows_on_spark

        states = _read_windows_on_spark(
            project, engine, name, reference, columns, plan, windows, since, oldest, newest
        )
    elif newest is not None and oldest is not None:
        states = _read_windows(
            project, name, reference, columns, plan, windows, since, oldest, newest
        )
    results = _judge(project, reference, columns, states, plan, moment)
    skew = spec.data is not None and spec.data.entity_key and spec.monitoring.skew
    if results and results[-1].judged and skew:
        results[-1] = _with_skew(project, name, reference_version.version, results[-1])
    freshness = _freshness(project, name, newest, moment)
    report = MonitorReport(
        model=name,
        version=reference_version.version,
        reference=reference.sketch,
        reference_source=reference.profile.source,
        window=plan.describe(),
        windows=results,
        freshness=freshness,
        generated_at=datetime.now(UTC),
    )
    if not record:
        return report
    who = actor or project.settings.user
    head, _ = project.metadata.audit.head()
    _record(project, name, reference_version.version, results, freshness, moment)
    # A window too small to judge still speaks for its volume (nothing else).
    judged = [
        JudgedWindow(w.end, w.signals if w.judged else [s for s in w.signals if s.name == "volume"])
        for w in results
    ]
    judged = [window for window in judged if window.signals]
    if judged:
        last = judged[-1]
        judged[-1] = JudgedWindow(last.end, [*last.signals, *freshness])
    else:
        judged = [JudgedWindow(moment, freshness)]
    changes = evaluate_rules(
        project,
        name,
        effective_rules(spec),
        judged,
        version=reference_version.version,
        now=moment if plan.time == "prediction" else datetime.now(UTC),
        actor=who,
    )
    if changes.opened or changes.resolved:
        from keel.events import notify

        notify(project, project.metadata.audit.events(after=head))
    return dataclasses.replace(
        report,
        opened=changes.opened,
        resolved=changes.resolved,
        open_alerts=project.metadata.monitoring.alerts(model=name, state="open"),
    )


def _reference_version(project: Workspace, model: str, version: int | None) -> ModelVersion:
    registry = project.metadata.models
    if version is not None:
        return registry.get(model, version)
    holder = project.metadata.releases.holder(model, "production")
    if holder is not None:
        return registry.get(model, holder)
    versions = registry.versions(model)
    if not versions:
        raise NotFound(f"model {model!r} has no versions", hint="run `keel train` first")
    return versions[-1]
