"""Storing a monitor run: its signals (`monitor_metrics`), then the alerts they raise."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from keel.domain.monitoring import MonitorMetric, Signal
from keel.monitoring.model import WindowResult

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__: list[str] = []


def _record(
    project: Workspace,
    model: str,
    version: int,
    windows: Sequence[WindowResult],
    freshness: Sequence[Signal],
    now: datetime,
) -> None:
    """Store every window's signals, and freshness as a window of no length at `now`."""
    spans = [(w.start, w.end, w.signals) for w in windows] + [(now, now, freshness)]
    project.metadata.monitoring.record_metrics(
        [
            MonitorMetric(
                model=model,
                version=version,
                window_start=start,
                window_end=end,
                signal=s.name,
                subject=s.subject,
                value=s.value,
                detail={**s.detail, "breached": s.breached, "limit": s.limit},
            )
            for start, end, signals in spans
            for s in signals
        ]
    )
