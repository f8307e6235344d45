"""`project.prediction_stats()`: what the prediction log holds, per model version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.domain.prediction import PredictionLogStats
    from keel.workspace import Workspace

__all__ = ["PredictionStats", "prediction_stats"]


@dataclass(frozen=True)
class PredictionStats:
    """Per model version: rows still in the store, segments compacted and their rows and
    bytes, and the first and last prediction's time."""

    models: list[PredictionLogStats]

    def to_dict(self) -> dict[str, Any]:
        return {"models": [entry.to_dict() for entry in self.models]}


def prediction_stats(project: Workspace) -> PredictionStats:
    """Rows and segments of the prediction log per model version (as `keel predictions
    stats`)."""
    from keel.predlog.read import stats

    return PredictionStats(stats(project))
