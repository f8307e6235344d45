"""Retraining: does a policy say when a new model is trained, and how it is released?"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.domain.duration import format_duration
from keel.maturity.checks.production import _item
from keel.maturity.model import Item, Status

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__: list[str] = []


def _retraining(project: Workspace) -> Item:
    triggers = project.spec.retraining.triggers
    signals = []
    if triggers.drifted_features is not None:
        signals.append(f"drift in {triggers.drifted_features}+ features")
    if triggers.performance is not None:
        performance = triggers.performance
        signals.append(f"{performance.metric} {performance.side} {performance.threshold:g}")
    if triggers.new_labels is not None:
        signals.append(f"{triggers.new_labels:,} new labels")
    schedule = None if triggers.schedule is None else format_duration(triggers.schedule)
    if signals:
        status: Status = "pass"
        evidence = "retrains on " + ", ".join(signals)
        if schedule:
            evidence += f", and every {schedule}"
    elif schedule:
        status, evidence = "partial", f"only a schedule (every {schedule}): blind to production"
    else:
        status, evidence = "fail", "no retraining trigger"
    metric = project.spec.primary_metric
    return _item(
        "retraining",
        "retraining.triggers",
        "retraining triggered by production signals",
        status,
        evidence,
        "keel.yaml: retraining.triggers: {drifted_features: 3, performance: "
        f"{{metric: {metric.name if metric else '<metric>'}, below: <floor>}}}}",
    )
