"""How a model is built and scored: `features:`, `training:` and `metrics:`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from keel.domain.metric import KNOWN_METRICS
from keel.spec._base import EntryPoint, _Section

__all__ = ["KNOWN_METRICS", "FeaturesSpec", "MetricSpec", "SplitSpec", "TrainingSpec"]


class FeaturesSpec(_Section):
    entry_point: EntryPoint
    params: dict[str, Any] = Field(default_factory=dict)


class SplitSpec(_Section):
    """How the holdout is cut: the newest rows by timestamp (default), or seeded random rows."""

    method: Literal["time", "random"] = "time"
    holdout: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0


class TrainingSpec(_Section):
    entry_point: EntryPoint
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    split: SplitSpec = Field(default_factory=SplitSpec)


class MetricSpec(_Section):
    name: str
    greater_is_better: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: object) -> object:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known_or_directed(self) -> MetricSpec:
        if self.name not in KNOWN_METRICS and self.greater_is_better is None:
            known = ", ".join(sorted(KNOWN_METRICS))
            raise ValueError(
                f"unknown metric {self.name!r}: use one of {known}, "
                "or give greater_is_better for a metric of your own"
            )
        return self

    @property
    def higher_is_better(self) -> bool:
        if self.greater_is_better is not None:
            return self.greater_is_better
        return KNOWN_METRICS[self.name]
