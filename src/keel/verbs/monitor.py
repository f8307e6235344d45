"""`project.monitor()`: windows of logged predictions against the model's reference."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from keel.verbs._actor import ActorLike, acting_name
from keel.verbs._engine import engine_spec

if TYPE_CHECKING:
    from datetime import datetime

    from keel.monitoring.model import MonitorReport
    from keel.spec import EngineSpec
    from keel.workspace import Workspace

__all__ = ["monitor"]


def monitor(
    project: Workspace,
    *,
    model: str | None = None,
    window: str | int | timedelta | None = None,
    by: str | None = None,
    windows: int = 14,
    since: datetime | None = None,
    now: datetime | None = None,
    version: int | None = None,
    record: bool = True,
    report: Path | str | None = None,
    actor: ActorLike = None,
    engine: str | EngineSpec | None = None,
) -> MonitorReport:
    """Compare the newest `windows` windows of logged predictions (or every window since
    `since`) with the reference profile of `version` (default: production's holder), as
    `keel monitor` does.

    `window` is a duration (`timedelta`, or text such as `1h`, `1d`, `15m`) or a number of
    predictions per window (`10000`); default monitoring.window. `by` cuts duration
    windows by prediction time or by the requests' event time (default monitoring.time).
    With `record` the signals are stored and raise or resolve alerts; `report` also writes a
    self-contained HTML report there. `now` judges freshness as of that time.

    `engine` (`local`, `spark`, or a whole `EngineSpec`; default: keel.yaml's `engine:`)
    says where the log is read: on Spark, the compacted segments are read from the artifact
    store by the cluster and summed up per partition, the rows not compacted yet in this
    process; the windows, counts and verdicts are the same. Row-count windows are refused on
    Spark (`ConfigError`, field `--window`); a failed Spark job is an `EngineError` and records
    nothing.
    """
    from keel.domain.duration import format_duration
    from keel.monitoring.service import WindowPlan, parse_window
    from keel.monitoring.service import monitor as run

    spec = project.spec.monitoring
    time = by or spec.time
    if time not in ("prediction", "event"):
        from keel.errors import ConfigError

        raise ConfigError(
            f"by must be prediction or event, got {time!r}",
            problems=[("by", "one of prediction, event")],
        )
    if window is None:
        plan = WindowPlan(duration=spec.window, time=time)
    elif isinstance(window, timedelta):
        plan = parse_window(format_duration(window), time=time)
    else:
        plan = parse_window(str(window), time=time)
    result = run(
        project,
        model=model,
        plan=plan,
        windows=windows,
        since=since,
        now=now,
        version=version,
        record=record,
        actor=acting_name(project, actor),
        engine=engine_spec(project, engine),
    )
    if report is not None:
        from keel.monitoring.report import render_monitor_report

        path = Path(report)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a dashboard reading the report never sees half of it.
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(render_monitor_report(result), encoding="utf-8")
        temporary.replace(path)
    return result
