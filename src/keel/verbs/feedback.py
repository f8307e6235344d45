"""`project.feedback()`: record delayed labels and measure the windows they touched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from keel.verbs._actor import ActorLike, acting_name

if TYPE_CHECKING:
    from keel.monitoring.feedback import FeedbackResult, WindowPerformance
    from keel.workspace import Workspace

__all__ = ["SHOWN_WINDOWS", "FeedbackReport", "feedback"]

#: Windows measured per model after an ingestion, newest first (older ones stay readable
#: with `keel feedback --since`).
SHOWN_WINDOWS: Final = 30


@dataclass(frozen=True)
class FeedbackReport:
    """What recording labels did (`feedback`), and the performance and label coverage of
    the windows they touched (`performance`, newest `SHOWN_WINDOWS` per model)."""

    feedback: FeedbackResult
    window: timedelta
    performance: list[WindowPerformance] = field(default_factory=list)
    #: Windows touched but not measured (beyond `SHOWN_WINDOWS`).
    windows_not_shown: int = 0
    #: Why there is no performance, when the labels were recorded but it cannot be measured.
    performance_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from keel.domain.duration import format_duration

        document: dict[str, Any] = {
            "feedback": self.feedback.to_dict(),
            "window": format_duration(self.window),
            "performance": [entry.to_dict() for entry in self.performance],
            "windows_not_shown": self.windows_not_shown,
        }
        if self.performance_error is not None:
            document["performance_error"] = self.performance_error
        return document


def feedback(
    project: Workspace,
    labels: Path | str | Mapping[str, Any],
    *,
    model: str | None = None,
    allow_unknown: bool = False,
    window: timedelta | None = None,
    version: int | None = None,
    performance: bool = True,
    actor: ActorLike = None,
    via: str | None = None,
) -> FeedbackReport:
    """Record delayed labels, joined to the logged predictions by id (or by entity key and
    time, as keel.yaml's monitoring.feedback says), all or nothing (as `keel feedback FILE`).

    `labels` is a file (CSV, Parquet or JSON lines) or a document as `POST /api/v1/feedback`
    takes: `{"feedback": [{"prediction_id": ..., "label": ...}, ...], "model"?: ...,
    "allow_unknown"?: ...}` (whose own `model` and `allow_unknown` then apply). Rows that name
    no logged prediction refuse the whole lot unless `allow_unknown` skips them. With
    `performance`, the windows (`window`, default monitoring.window) holding a labelled
    prediction are measured, for one model `version` if given.
    """
    from keel.errors import KeelError
    from keel.monitoring.feedback import (
        ingest,
        read_feedback_file,
        receive,
    )
    from keel.monitoring.feedback import (
        performance as measure,
    )

    who = acting_name(project, actor)
    if isinstance(labels, str | Path):
        file = Path(labels)
        table = read_feedback_file(file, id_column=project.spec.monitoring.feedback.id_column)
        result = ingest(
            project, table, model=model, allow_unknown=allow_unknown, actor=who, source=str(file)
        )
    else:
        result = receive(project, labels, actor=who, via=via)
    size = window or project.spec.monitoring.window
    if not performance:
        return FeedbackReport(result, size)
    entries: list[WindowPerformance] = []
    hidden = 0
    try:
        for name, starts in sorted(result.windows_of(size).items()):
            hidden += max(0, len(starts) - SHOWN_WINDOWS)
            for start in starts[-SHOWN_WINDOWS:]:
                entries.extend(
                    measure(
                        project, name, start=start, end=start + size, window=size, version=version
                    )
                )
    except KeelError as exc:  # the labels are recorded: say why there is no performance
        return FeedbackReport(result, size, entries, hidden, exc.message)
    return FeedbackReport(result, size, entries, hidden)
