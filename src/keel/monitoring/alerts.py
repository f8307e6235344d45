"""Alert rules: which signals raise alerts, whose they are, and when they resolve.

    rules = effective_rules(spec)                    # keel.yaml's, or keel's defaults
    changes = evaluate_rules(project, model, rules, windows, freshness, now=...)

A rule fires on a subject (a feature, an output, a metric, or the model) when the signal
breached in the rule's number of consecutive judged windows: its own threshold in its
direction when it has one, the signal's own verdict otherwise (a drift test's threshold).
A firing rule raises an alert, or updates the open one: one per model, rule and subject.
An open alert whose signal was measured and no longer breaches is resolved. Opening and
resolving are audit events, so webhooks deliver them; each is also logged.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from keel.domain.duration import format_age
from keel.domain.metric import direction_of, worse_side
from keel.domain.monitoring import Alert, AlertDraft, Signal
from keel.spec import AlertRule, ProjectSpec

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = [
    "STAGES",
    "AlertChanges",
    "default_rules",
    "effective_rules",
    "evaluate_rules",
    "owner_of",
]

_log = logging.getLogger("keel.alerts")

#: The stages of keel.yaml's `owners:`: a rule's owner may name one.
STAGES: Final = ("data", "training", "release", "monitoring")


def default_rules(spec: ProjectSpec) -> list[AlertRule]:
    """keel's rules when keel.yaml sets none: data changes go to the data owner, model
    behaviour and silence to the monitoring owner."""
    freshness = spec.monitoring.freshness
    rules = [
        AlertRule(name="feature-drift", signal="drift", subject="inputs.*", owner="data"),
        AlertRule(
            name="null-rate",
            signal="null_rate_change",
            threshold=0.05,
            subject="inputs.*",
            owner="data",
        ),
        AlertRule(name="schema-change", signal="schema", severity="critical", owner="data"),
        AlertRule(name="out-of-range", signal="out_of_range", threshold=0.05, owner="data"),
        AlertRule(
            name="unseen-categories", signal="unseen_categories", threshold=0.05, owner="data"
        ),
        AlertRule(name="score-drift", signal="score_drift", owner="monitoring"),
        AlertRule(
            name="traffic-drop",
            signal="volume",
            threshold=0.5,
            direction="below",
            owner="monitoring",
        ),
        AlertRule(name="traffic-spike", signal="volume", threshold=3.0, owner="monitoring"),
    ]
    if spec.data is not None and spec.data.entity_key and spec.monitoring.skew:
        rules.append(AlertRule(name="row-skew", signal="row_skew", threshold=0.01, owner="data"))
    trigger = spec.retraining.triggers.performance
    if trigger is not None:
        rules.append(
            AlertRule(
                name="performance",
                signal="performance",
                subject=trigger.metric,
                threshold=trigger.threshold,
                direction=trigger.side,
                severity="critical",
                owner="training",
            )
        )
    if freshness.predictions is not None:
        rules.append(
            AlertRule(
                name="predictions-stopped",
                signal="prediction_age",
                threshold=freshness.predictions.total_seconds(),
                severity="critical",
                owner="monitoring",
            )
        )
    if freshness.feedback is not None:
        rules.append(
            AlertRule(
                name="feedback-stopped",
                signal="feedback_age",
                threshold=freshness.feedback.total_seconds(),
                owner="monitoring",
            )
        )
    if freshness.data:
        rules.append(AlertRule(name="stale-data", signal="data_age", owner="data"))
    return rules


def effective_rules(spec: ProjectSpec) -> list[AlertRule]:
    rules = spec.monitoring.alerts if spec.monitoring.alerts is not None else default_rules(spec)
    return [_directed(rule, spec) for rule in rules]


def _directed(rule: AlertRule, spec: ProjectSpec) -> AlertRule:
    """A performance rule on one metric that names no direction, with its metric's worse
    side written in, so exported Prometheus rules compare as keel does."""
    if rule.signal != "performance" or "direction" in rule.model_fields_set:
        return rule
    if rule.subject is None or any(c in rule.subject for c in "*?["):
        return rule  # several metrics: each signal's own side applies (_direction)
    higher = direction_of(rule.subject, spec.metrics)
    if higher is None:
        return rule
    return rule.model_copy(update={"direction": worse_side(higher)})


def owner_of(spec: ProjectSpec, rule: AlertRule) -> str | None:
    """The person answerable for a rule: its stage's owner, or the person it names."""
    if rule.owner is None:
        return spec.owners.monitoring
    if rule.owner in STAGES:
        owner: str | None = getattr(spec.owners, rule.owner)
        return owner
    return rule.owner


def _direction(rule: AlertRule, signal: Signal, spec: ProjectSpec) -> Literal["above", "below"]:
    """The side of the threshold a rule fires on. A performance rule that does not say fires
    on its metric's worse side (below for roc_auc, above for rmse): `above`, the default of
    every other signal, would fire on an accuracy that improved."""
    if rule.signal == "performance" and "direction" not in rule.model_fields_set:
        higher = direction_of(signal.subject, spec.metrics)
        if higher is not None:
            return worse_side(higher)
    return rule.direction


def _breaches(rule: AlertRule, signal: Signal, spec: ProjectSpec) -> bool:
    if signal.value is None:
        return False
    if rule.threshold is None:
        return signal.breached
    if _direction(rule, signal, spec) == "below":
        return signal.value < rule.threshold
    return signal.value > rule.threshold


def _covers(rule: AlertRule, signal: Signal) -> bool:
    if signal.name != rule.signal:
        return False
    return rule.subject is None or fnmatch.fnmatchcase(signal.subject, rule.subject)


@dataclass
class AlertChanges:
    opened: list[Alert] = field(default_factory=list)
    updated: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)


@dataclass(frozen=True)
class JudgedWindow:
    """The signals of one window, in time order, and when it ended."""

    end: datetime
    signals: Sequence[Signal]


def evaluate_rules(
    project: Workspace,
    model: str,
    rules: Sequence[AlertRule],
    windows: Sequence[JudgedWindow],
    *,
    version: int | None,
    now: datetime,
    actor: str,
) -> AlertChanges:
    """Raise, update and resolve `model`'s alerts from judged windows (oldest first; the
    last is the newest, freshness signals ride on it)."""
    store = project.metadata.monitoring
    changes = AlertChanges()
    spec = project.spec
    if not windows:
        return changes
    firing: dict[tuple[str, str], tuple[AlertRule, Signal, int]] = {}
    measured: set[tuple[str, str]] = set()
    for rule in rules:
        # Each rule is judged on the windows that measured its signal, the newest of them
        # its "latest": a window too small to judge measures its volume and nothing else.
        measuring = [w for w in windows if any(_covers(rule, s) for s in w.signals)]
        if not measuring:
            continue
        latest = measuring[-1]
        history: dict[str, list[tuple[Signal, bool]]] = {}
        for window in measuring[-rule.windows :]:
            for signal in window.signals:
                if _covers(rule, signal):
                    history.setdefault(signal.subject, []).append(
                        (signal, _breaches(rule, signal, spec))
                    )
        for subject, seen in history.items():
            in_latest = any(_covers(rule, s) and s.subject == subject for s in latest.signals)
            if in_latest:
                measured.add((rule.name, subject))
            streak = 0
            for _, breached in reversed(seen):
                if not breached:
                    break
                streak += 1
            if in_latest and streak >= rule.windows and len(seen) >= rule.windows:
                firing[(rule.name, subject)] = (rule, seen[-1][0], streak)
    for (_, subject), (rule, signal, streak) in firing.items():
        draft = AlertDraft(
            model=model,
            rule=rule.name,
            signal=rule.signal,
            subject=subject,
            severity=rule.severity,
            message=_message(rule, signal, streak, spec),
            owner=owner_of(spec, rule),
            version=version,
            value=signal.value,
            threshold=rule.threshold if rule.threshold is not None else signal.limit,
            evidence={
                "signal": signal.to_dict(),
                "windows": streak,
                "rule": rule.model_dump(mode="json"),
            },
        )
        alert, opened = store.raise_alert(draft, at=now, actor=actor)
        if opened:
            changes.opened.append(alert)
            _log.warning(
                "alert opened: %s (%s, owner %s)",
                alert.message,
                alert.severity,
                alert.owner or "none",
            )
        else:
            changes.updated.append(alert)
    for alert in store.alerts(model=model, state="open", limit=10_000):
        key = (alert.rule, alert.subject)
        if key in firing or key not in measured:
            continue  # still firing, or not measured this time: leave it open
        resolved = store.resolve_alert(
            alert.id, at=now, actor=actor, reason="the signal is back within its limit"
        )
        changes.resolved.append(resolved)
        _log.info("alert resolved: %s", alert.message)
    return changes


def _message(rule: AlertRule, signal: Signal, streak: int, spec: ProjectSpec) -> str:
    subject = f" of {signal.subject}" if signal.subject else ""
    detail = signal.detail if isinstance(signal.detail, Mapping) else {}
    if rule.threshold is None and detail.get("decision") == "p_value":
        # A hypothesis test: its verdict is the p-value, its statistic the size of the change.
        span = f" for {streak} windows" if streak > 1 else ""
        return (
            f"{rule.signal}{subject}: {detail.get('test')} statistic {_number(signal.value)}, "
            f"p-value {_number(detail.get('p_value'))} below {_number(signal.limit)}{span}"
        )
    # Ages are seconds in the store and in Prometheus; people read them as durations.
    render = _age if rule.signal.endswith("_age") else _number
    value = render(signal.value)
    limit = rule.threshold if rule.threshold is not None else signal.limit
    if limit is None:
        comparison = "breached"
    else:
        word = _direction(rule, signal, spec)
        comparison = f"{word} {render(limit)}"
    span = f" for {streak} windows" if streak > 1 else ""
    test = signal.detail.get("test") if isinstance(signal.detail, Mapping) else None
    how = f" ({test})" if test else ""
    # An age says what it was measured from: a time column, or the source's own time.
    basis = detail.get("measured_from")
    if basis:
        how += f" (from {basis})"
    return f"{rule.signal}{subject} is {value}{how}, {comparison}{span}"


def _age(value: Any) -> str:
    if value is None:
        return "unknown"
    return format_age(timedelta(seconds=float(value)))


def _number(value: Any) -> str:
    if value is None:
        return "unknown"
    number = float(value)
    if number.is_integer() and abs(number) < 1e12:
        return str(int(number))
    return f"{number:.4g}"
