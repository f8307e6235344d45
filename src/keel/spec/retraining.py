"""When production signals call for a new model, and how it is released: `retraining:`."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from keel.spec._base import Duration, _Section

__all__ = [
    "CanaryPolicy",
    "CanaryRollback",
    "PerformanceTrigger",
    "RetrainingSpec",
    "RetrainingTriggers",
]


class PerformanceTrigger(_Section):
    """Retrain when the metric, measured on the newest window with labels, is worse than a
    threshold: `below` it for a metric where higher is better (roc_auc, r2, ...), `above`
    it for one where lower is better (rmse, mae, log_loss, ...)."""

    metric: str
    below: float | None = None
    above: float | None = None

    @model_validator(mode="after")
    def _one_threshold(self) -> PerformanceTrigger:
        if (self.below is None) == (self.above is None):
            raise ValueError(
                "give exactly one of below (a metric where higher is better) or above "
                "(a metric where lower is better)"
            )
        return self

    @property
    def threshold(self) -> float:
        value = self.below if self.below is not None else self.above
        assert value is not None  # _one_threshold holds it
        return value

    @property
    def side(self) -> Literal["above", "below"]:
        return "below" if self.below is not None else "above"


class RetrainingTriggers(_Section):
    drifted_features: int | None = Field(default=None, ge=1)
    performance: PerformanceTrigger | None = None
    new_labels: int | None = Field(default=None, ge=1)
    schedule: Duration | None = None


class CanaryRollback(_Section):
    """When a canary is rolled back on its own, judged against production over the same
    period: slower, scoring differently, or (once labels arrive) performing worse."""

    #: Canary's median latency over production's.
    max_latency_ratio: float = Field(default=2.0, gt=1)
    #: Kolmogorov-Smirnov distance between the two versions' score distributions. Off by
    #: default: a retrained challenger is often sharper than its champion (0.3-0.55 on the
    #: flights example) and that is not a fault; set it to catch collapsed scores early.
    max_score_drift: float | None = Field(default=None, gt=0, le=1)
    #: Canary's metric minus production's on their labelled predictions (in the metric's
    #: better direction: negative tolerates a shortfall), in the metric's own units. Unset:
    #: -0.02 for a metric bounded above by 1 (AUC, accuracy, f1, brier, r2), and 5% of
    #: production's value for an unbounded one (rmse, mae, log_loss, a metric of your own),
    #: whose units are the data's (0.02 rentals an hour is noise).
    min_performance_delta: float | None = None


class CanaryPolicy(_Section):
    """How long a challenger on canary is watched before it is promoted (its traffic share is
    `serving.canary_share`), and what rolls it back."""

    duration: Duration = timedelta(hours=1)
    #: Canary predictions needed before it can be judged either way.
    min_predictions: int = Field(default=200, ge=1)
    rollback: CanaryRollback = Field(default_factory=CanaryRollback)


class RetrainingSpec(_Section):
    """When production signals call for a new model, and what happens to it.

    `promotion`: manual opens a request to move `production` (approvals as the release
    policy says); canary puts the challenger on `canary`, watched and then promoted or
    rolled back; automatic moves `production` when the release policy allows it.
    """

    triggers: RetrainingTriggers = Field(default_factory=RetrainingTriggers)
    promotion: Literal["manual", "canary", "automatic"] = "manual"
    canary: CanaryPolicy = Field(default_factory=CanaryPolicy)
    #: Train on the newest rows within this span of `data.timestamp` (all rows when unset).
    training_window: Duration | None = None
    #: Champion and challenger are scored on the newest labelled predictions, this many.
    evaluation_rows: int = Field(default=5000, ge=10)
    #: How much better than the champion the challenger must score there.
    min_improvement: float = 0.0
