"""What monitoring records: signals of a window, the metrics kept over time, and alerts.

A *signal* is one number about one window of production traffic compared with the model's
reference profile: the drift statistic of a feature, a null rate, the share of unseen
categories, the score distribution's drift, the window's volume, the performance once labels
have arrived, the age of the newest prediction. Each has a subject (a feature such as
`inputs.distance`, an output such as `outputs.probability`, a metric name, or "" for the
model as a whole) and says whether it breached the limit it was compared with.

Signals are stored as `MonitorMetric`s (history for charts and `/metrics`) and, through the
rules of keel.yaml, raise `Alert`s: one open alert per model, rule and subject, updated while
the signal keeps firing and resolved when it clears.

Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

__all__ = [
    "ALERT_STATES",
    "SEVERITIES",
    "SIGNALS",
    "Alert",
    "AlertDraft",
    "AlertState",
    "MonitorMetric",
    "ReferenceProfile",
    "Severity",
    "Signal",
    "open_key",
]

Severity = Literal["info", "warning", "critical"]
AlertState = Literal["open", "resolved"]
SEVERITIES: Final[tuple[Severity, ...]] = ("info", "warning", "critical")
ALERT_STATES: Final[tuple[AlertState, ...]] = ("open", "resolved")

#: Signal name -> what it measures (the value's meaning). Names are stable keys of stored
#: metrics, alert rules, Prometheus series and the exported rules.
SIGNALS: Final[Mapping[str, str]] = {
    "drift": "drift statistic of a feature against the reference (per test; see detail.test)",
    "drifted_features": "number of features whose drift test fired in the window",
    "null_rate": "share of missing values of a feature in the window",
    "null_rate_change": "null rate in the window minus the reference's",
    "schema": "1 when a column is new, missing or of another type than in the reference",
    "out_of_range": "share of a numeric feature's values outside the reference's [min, max]",
    "unseen_categories": "share of a categorical feature's values never seen in the reference",
    "score_drift": "drift statistic of a model output against the reference",
    "volume": "predictions in the window divided by the median of the previous windows",
    "predictions": "predictions in the window",
    "not_judged": "predictions in a window too small to judge (fewer than monitoring.min_rows)",
    "performance": "the metric over predictions whose labels have arrived",
    "label_coverage": "share of the window's predictions that have a label",
    "prediction_age": "seconds since the newest logged prediction",
    "feedback_age": "seconds since the newest feedback arrived",
    "data_age": "seconds between now and the data source's newest row",
    "row_skew": "share of rows whose online feature differs from its offline recomputation",
    "distribution_skew": "drift statistic of a served feature against its training values",
}


@dataclass(frozen=True, slots=True)
class Signal:
    """One measurement of one window, and whether it breached its limit."""

    name: str
    subject: str
    value: float | None
    breached: bool = False
    limit: float | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.name,
            "subject": self.subject,
            "value": self.value,
            "breached": self.breached,
            "limit": self.limit,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True, slots=True)
class MonitorMetric:
    """A signal's value for one model version and window, as stored."""

    model: str
    version: int
    window_start: datetime
    window_end: datetime
    signal: str
    subject: str
    value: float | None
    detail: Mapping[str, Any] = field(default_factory=dict)
    recorded_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "signal": self.signal,
            "subject": self.subject,
            "value": self.value,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True, slots=True)
class ReferenceProfile:
    """Where a model version's reference sketch is stored, and what rows it describes."""

    model: str
    version: int
    profile: str  # artifact digest of the sketch's JSON (`keel.stats.sketch.TableSketch`)
    row_count: int
    source: str
    created_at: datetime


def open_key(model: str, rule: str, subject: str) -> str:
    """The key that makes an alert unique while it is open."""
    return f"{model}\x1f{rule}\x1f{subject}"


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """A rule that fired on a signal: raised as a new alert, or folded into the open one."""

    model: str
    rule: str
    signal: str
    subject: str
    severity: Severity
    message: str
    owner: str | None = None
    version: int | None = None
    value: float | None = None
    threshold: float | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return open_key(self.model, self.rule, self.subject)


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as stored: opened once, seen again while the signal fires, then resolved."""

    id: str
    model: str
    rule: str
    signal: str
    subject: str
    severity: Severity
    state: AlertState
    message: str
    owner: str | None
    version: int | None
    value: float | None
    threshold: float | None
    evidence: Mapping[str, Any]
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "rule": self.rule,
            "signal": self.signal,
            "subject": self.subject,
            "severity": self.severity,
            "state": self.state,
            "message": self.message,
            "owner": self.owner,
            "version": self.version,
            "value": self.value,
            "threshold": self.threshold,
            "evidence": dict(self.evidence),
            "opened_at": self.opened_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "resolved_at": None if self.resolved_at is None else self.resolved_at.isoformat(),
        }
