"""`project.canary_status()`: the canary against production, changing nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from keel.retraining.canary import CanaryAnalysis
    from keel.workspace import Workspace

__all__ = ["CanaryStatus", "canary_status"]


@dataclass(frozen=True)
class CanaryStatus:
    """The analysis a canary check would act on, or None when no version holds `canary`."""

    model: str
    analysis: CanaryAnalysis | None

    def to_dict(self) -> dict[str, Any]:
        if self.analysis is None:
            return {"model": self.model, "canary": None}
        return self.analysis.to_dict()


def canary_status(
    project: Workspace, *, model: str | None = None, now: datetime | None = None
) -> CanaryStatus:
    """Compare the version holding `canary` with production over the canary's period (ending
    `now`) and give the verdict `canary_check` would act on, without acting (as `keel canary
    status`). `model` defaults to the project's; `status.analysis` is None without a canary."""
    from keel.monitoring.feedback import default_model
    from keel.retraining.canary import analyze_canary

    name = default_model(project, model)
    if project.metadata.releases.holder(name, "canary") is None:
        return CanaryStatus(name, None)
    return CanaryStatus(name, analyze_canary(project, name, now=now))
