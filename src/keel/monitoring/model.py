"""What `keel monitor` produces: per window, the current sketch, drift, signals and
performance; for the run, the reference it compared with and the alerts it opened or resolved.

The HTML report, `--json`, the UI and the Prometheus collector all read these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from keel.domain.monitoring import Alert, Signal

if TYPE_CHECKING:
    from keel.stats.drift import DriftResult
    from keel.stats.sketch import TableSketch

__all__ = ["MonitorReport", "WindowResult"]


@dataclass(frozen=True)
class WindowResult:
    """One window of logged predictions compared with the reference."""

    start: datetime
    end: datetime
    rows: int
    versions: dict[int, int]  # model version -> predictions it made in the window
    sketch: TableSketch  # the window's columns: "inputs.<name>", "outputs.<name>"
    drift: list[DriftResult]  # one per input feature and model output
    signals: list[Signal]  # every signal of the window, breached or not
    metric: str | None = None  # performance metric, once labels arrived
    performance: float | None = None
    labelled: int = 0
    coverage: float | None = None  # labelled / rows
    # Why nothing was judged in the window (too few rows), or None when it was.
    not_judged: str | None = None
    # Still open or cut short by the end of the log: its volume is not judged.
    partial: bool = False

    @property
    def judged(self) -> bool:
        return self.not_judged is None

    @property
    def drifted(self) -> list[str]:
        return [d.column for d in self.drift if d.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "versions": {str(k): v for k, v in sorted(self.versions.items())},
            "drift": [d.to_dict() for d in self.drift],
            "drifted": self.drifted,
            "signals": [s.to_dict() for s in self.signals],
            "metric": self.metric,
            "performance": self.performance,
            "labelled": self.labelled,
            "coverage": self.coverage,
            "judged": self.judged,
            "not_judged": self.not_judged,
            "partial": self.partial,
        }


@dataclass(frozen=True)
class MonitorReport:
    """The result of monitoring one model over a range of windows."""

    model: str
    version: int  # the reference's version: production's holder when monitoring ran
    reference: TableSketch
    reference_source: str  # what rows the reference describes, in words
    window: str  # how windows were cut, in words ("1d by prediction time", "10000 rows")
    windows: list[WindowResult]
    freshness: list[Signal]  # prediction_age, feedback_age, data_age
    opened: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    open_alerts: list[Alert] = field(default_factory=list)  # after this run
    generated_at: datetime | None = None

    @property
    def latest_judged(self) -> WindowResult | None:
        """The newest window with enough rows to judge: what headlines speak of."""
        return next((w for w in reversed(self.windows) if w.judged), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "reference_source": self.reference_source,
            "window": self.window,
            "windows": [w.to_dict() for w in self.windows],
            "freshness": [s.to_dict() for s in self.freshness],
            "opened": [a.to_dict() for a in self.opened],
            "resolved": [a.to_dict() for a in self.resolved],
            "open_alerts": [a.to_dict() for a in self.open_alerts],
            "generated_at": None if self.generated_at is None else self.generated_at.isoformat(),
        }
