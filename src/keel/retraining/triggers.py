"""Retraining triggers: does production call for a new model?

    triggers = evaluate_triggers(project, "flights-delay", now=now)
    fired = [t for t in triggers if t.fired]

Each trigger of `retraining.triggers` reads what monitoring and feedback stored, never
re-computes them: the number of drifted features in the newest monitored window, the
performance of the newest window with labels, the labels received for predictions made
since the champion was registered, and (the fallback) the champion's age.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keel.domain.metric import breaches, direction_of, direction_words, worse_side
from keel.serial import dump

if TYPE_CHECKING:
    from keel.domain.model import ModelVersion
    from keel.spec import PerformanceTrigger
    from keel.workspace import Workspace

__all__ = ["Trigger", "champion", "evaluate_triggers"]


@dataclass(frozen=True)
class Trigger:
    """One trigger of the policy: whether it fired, on what value, and why."""

    name: str
    fired: bool
    value: float | None
    threshold: float | None
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


def champion(project: Workspace, model: str) -> ModelVersion | None:
    """The version holding `production`, if any."""
    holder = project.metadata.releases.holder(model, "production")
    return None if holder is None else project.metadata.models.get(model, holder)


def evaluate_triggers(
    project: Workspace, model: str, *, now: datetime | None = None
) -> list[Trigger]:
    """Every configured trigger, fired or not, in the policy's order."""
    policy = project.spec.retraining.triggers
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    current = champion(project, model)
    monitoring = project.metadata.monitoring
    triggers: list[Trigger] = []
    if policy.drifted_features is not None:
        latest = _newest(monitoring.metrics(model, signal="drifted_features"))
        value = None if latest is None else latest.value
        fired = value is not None and value >= policy.drifted_features
        features = [] if latest is None else list(latest.detail.get("features", []))
        triggers.append(
            Trigger(
                "drifted_features",
                fired,
                value,
                float(policy.drifted_features),
                (
                    "no monitored window yet"
                    if latest is None
                    else f"{value:.0f} features drifted in the window ending "
                    f"{latest.window_end:%Y-%m-%d %H:%M}; the policy retrains at "
                    f"{policy.drifted_features}"
                ),
                {"features": features}
                | ({} if latest is None else {"window_end": latest.window_end.isoformat()}),
            )
        )
    if policy.performance is not None:
        triggers.append(_performance(project, model, policy.performance))
    if policy.new_labels is not None:
        since = None if current is None else current.created_at
        count = _labels_since(project, model, since)
        triggers.append(
            Trigger(
                "new_labels",
                count >= policy.new_labels,
                float(count),
                float(policy.new_labels),
                f"{count:,} labelled predictions since "
                + ("the champion was registered" if since else "the start")
                + f"; the policy retrains at {policy.new_labels:,}",
                {} if since is None else {"since": since.isoformat()},
            )
        )
    if policy.schedule is not None:
        age = None if current is None else (moment - current.created_at).total_seconds()
        limit = policy.schedule.total_seconds()
        triggers.append(
            Trigger(
                "schedule",
                age is None or age >= limit,
                age,
                limit,
                "no champion yet"
                if age is None
                else f"the champion is {age / 86400:.1f} days old; the schedule retrains "
                f"every {limit / 86400:.1f} days",
            )
        )
    return triggers


def _performance(project: Workspace, model: str, wanted: PerformanceTrigger) -> Trigger:
    """Fires when the newest window that measured the metric measured it worse than the
    threshold, on the metric's worse side (below for roc_auc, above for rmse)."""
    higher = direction_of(wanted.metric, project.spec.metrics)
    assert higher is not None  # keel.yaml refuses a trigger on a metric without a direction
    side = worse_side(higher)
    history = project.metadata.monitoring.metrics(
        model, signal="performance", subject=wanted.metric
    )
    latest = _newest([m for m in history if m.value is not None])
    if latest is None:
        tried = _newest(history)
        why = None if tried is None else tried.detail.get("note")
        reason = (
            f"no monitored window has measured {wanted.metric} yet"
            if tried is None
            else f"{wanted.metric} not measured in the window ending "
            f"{tried.window_end:%Y-%m-%d %H:%M}: {why or 'no value'}"
        )
        evidence = {} if tried is None else {"window_end": tried.window_end.isoformat()}
        return Trigger("performance", False, None, wanted.threshold, reason, evidence)
    value = float(latest.value)
    fired = breaches(value, wanted.threshold, higher_is_better=higher)
    reason = (
        f"{wanted.metric} {value:.4f} in the window ending {latest.window_end:%Y-%m-%d %H:%M}, "
        f"{'' if fired else 'not '}{side} {wanted.threshold:g} ({direction_words(higher)})"
    )
    evidence = {
        "window_end": latest.window_end.isoformat(),
        "labelled": latest.detail.get("labelled"),
        "direction": direction_words(higher),
    }
    return Trigger("performance", fired, value, wanted.threshold, reason, evidence)


def _newest(metrics: list[Any]) -> Any:
    return max(metrics, key=lambda m: (m.window_end, m.window_start), default=None)


def _labels_since(project: Workspace, model: str, since: datetime | None) -> int:
    count: int = project.metadata.feedback.count(model, start=since)
    return count
