"""`project.performance()`: performance and label coverage per window, recording nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from keel.monitoring.feedback import WindowPerformance
    from keel.workspace import Workspace

__all__ = ["DEFAULT_WINDOWS", "PerformanceReport", "performance"]

#: Windows measured when no `since` is given.
DEFAULT_WINDOWS: Final = 7


@dataclass(frozen=True)
class PerformanceReport:
    """Per window from `start` to `end` and model version: predictions, labelled predictions
    and the metric over them (`performance`); with the labels received in the range and the
    time the newest label arrived."""

    model: str
    window: timedelta
    start: datetime
    end: datetime
    labels: int
    newest_label_at: datetime | None
    performance: list[WindowPerformance]

    def to_dict(self) -> dict[str, Any]:
        from keel.domain.duration import format_duration

        return {
            "model": self.model,
            "window": format_duration(self.window),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "labels": self.labels,
            "newest_label_at": (
                None if self.newest_label_at is None else self.newest_label_at.isoformat()
            ),
            "performance": [entry.to_dict() for entry in self.performance],
        }


def performance(
    project: Workspace,
    *,
    model: str | None = None,
    window: timedelta | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    version: int | None = None,
) -> PerformanceReport:
    """Performance and label coverage of `model` (default: the project's) per window of
    `window` (default: monitoring.window) from `since` to `until` (as `keel feedback` without
    a file). `until` defaults to the end of the current window, `since` to `DEFAULT_WINDOWS`
    windows before it; with `version`, only that model version. `since` not before `until`
    is a `ConfigError` naming `since`."""
    from keel.errors import ConfigError
    from keel.monitoring.feedback import align, default_model
    from keel.monitoring.feedback import performance as measure

    name = default_model(project, model)
    size = window or project.spec.monitoring.window
    end = until or align(datetime.now(UTC), size) + size
    start = since or end - DEFAULT_WINDOWS * size
    if start >= end:
        raise ConfigError(
            f"since ({start.isoformat()}) must be before until ({end.isoformat()})",
            problems=[("since", "must be before until")],
        )
    entries = measure(project, name, start=start, end=end, window=size, version=version)
    feedback = project.metadata.feedback
    return PerformanceReport(
        model=name,
        window=size,
        start=start,
        end=end,
        labels=feedback.count(name, start=start, end=end),
        newest_label_at=feedback.newest(name),
        performance=entries,
    )
