"""`project.watch_pass()`: one pass of the closed loop, as `keel watch` runs on a schedule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from keel.verbs._actor import ActorLike

if TYPE_CHECKING:
    from keel.monitoring.model import MonitorReport
    from keel.retraining.canary import CanaryOutcome
    from keel.retraining.service import RetrainOutcome
    from keel.workspace import Workspace

__all__ = ["WatchPass", "watch_pass"]


@dataclass(frozen=True)
class WatchPass:
    """What one pass did: the monitoring report (alerts opened and resolved), the canary's
    judgement (None when no canary was running) and the retraining outcome."""

    monitor: MonitorReport
    canary: CanaryOutcome | None
    retrain: RetrainOutcome

    def to_dict(self) -> dict[str, Any]:
        report = self.monitor
        entry: dict[str, Any] = {
            "monitor": {
                "windows": len(report.windows),
                "opened": [a.to_dict() for a in report.opened],
                "resolved": [a.to_dict() for a in report.resolved],
                "open": len(report.open_alerts),
            }
        }
        if self.canary is not None:
            entry["canary"] = self.canary.to_dict()
        entry["retrain"] = self.retrain.to_dict()
        return entry


def watch_pass(
    project: Workspace,
    *,
    model: str | None = None,
    as_of: datetime | None = None,
    actor: ActorLike = None,
) -> WatchPass:
    """One pass of the closed loop (as each pass of `keel watch`): monitor the newest
    windows of `model` (default: the project's), raising and resolving alerts; judge the
    canary if one is running (promote or roll back); retrain if a trigger fired, checking
    the data's freshness as of `as_of`. Schedule it from an orchestrator as `keel watch
    --once` is from cron."""
    from keel.verbs.canary_check import canary_check
    from keel.verbs.monitor import monitor
    from keel.verbs.retrain import retrain

    report = monitor(project, model=model, actor=actor)
    name = model or project.spec.name
    canary = None
    if project.metadata.releases.holder(name, "canary") is not None:
        canary = canary_check(project, model=name, actor=actor)
    outcome = retrain(project, model=model, if_triggered=True, as_of=as_of, actor=actor)
    return WatchPass(report, canary, outcome)
