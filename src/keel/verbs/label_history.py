"""`project.label_history()`: every label one prediction has had."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.metadata.base import LabelRecord
    from keel.workspace import Workspace

__all__ = ["LabelHistory", "label_history"]


@dataclass(frozen=True)
class LabelHistory:
    """The labels of one prediction, oldest revision first, each saying who recorded it and
    who replaced it (the current one is not replaced)."""

    prediction_id: str
    labels: list[LabelRecord]

    def to_dict(self) -> dict[str, Any]:
        return {
            "prediction_id": self.prediction_id,
            "labels": [label.to_dict() for label in self.labels],
        }


def label_history(project: Workspace, prediction_id: str) -> LabelHistory:
    """Every label recorded for `prediction_id` (as `keel feedback --history ID`); empty when
    it has none. A malformed id is a `ConfigError` naming the form ids take."""
    from keel.serving.explain import check_prediction_id

    normalised = check_prediction_id(prediction_id)
    return LabelHistory(normalised, project.metadata.feedback.history(normalised))
