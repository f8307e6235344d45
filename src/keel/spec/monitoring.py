"""What `keel monitor` compares, when it alerts, and how labels join: `monitoring:`."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from keel.domain.duration import parse_duration
from keel.domain.metric import KNOWN_METRICS
from keel.spec._base import Duration, _Section

__all__ = [
    "AlertRule",
    "AlertSignal",
    "DriftSpec",
    "FeedbackSpec",
    "FreshnessSpec",
    "MonitoringSpec",
]


class DriftSpec(_Section):
    """Which drift test monitoring runs, and its threshold (the test's own by default)."""

    test: Literal["auto", "ks", "psi", "chi2", "wasserstein", "jensenshannon"] = "auto"
    threshold: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _threshold_needs_a_test(self) -> DriftSpec:
        if self.threshold is not None and self.test == "auto":
            raise ValueError(
                "threshold needs a test: the automatic choice mixes p-values (ks, chi2) and "
                "distances (wasserstein, jensenshannon), which no one threshold fits"
            )
        return self


#: Signals an alert rule may watch (`keel.domain.monitoring.SIGNALS` describes each).
AlertSignal = Literal[
    "drift",
    "drifted_features",
    "null_rate",
    "null_rate_change",
    "schema",
    "out_of_range",
    "unseen_categories",
    "score_drift",
    "volume",
    "predictions",
    "performance",
    "label_coverage",
    "prediction_age",
    "feedback_age",
    "data_age",
    "row_skew",
    "distribution_skew",
]


class AlertRule(_Section):
    """When a signal raises an alert, how loud, and whose it is.

    Without `threshold`, the signal's own verdict decides (a drift test's threshold, for
    instance); with one, the value is compared with it in `direction`. The alert fires once
    the signal breaches in `windows` consecutive windows, and resolves when it clears.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    signal: AlertSignal
    threshold: float | None = None
    direction: Literal["above", "below"] = "above"
    #: Which subjects (features, outputs, metrics) the rule covers: a glob, e.g. "inputs.*".
    subject: str | None = None
    windows: int = Field(default=1, ge=1)
    severity: Literal["info", "warning", "critical"] = "warning"
    #: A stage of `owners:` (data, training, release, monitoring) or a person or team.
    owner: str | None = None


class FreshnessSpec(_Section):
    """How long production may go quiet before an alert: no new prediction, no new label;
    and whether the data is held to a freshness: its newest row to the contract's timestamp
    rule, or, for data without a time column, the source's own time (a file's modification
    time, the newest snapshot's time) to `data` given as a duration."""

    predictions: Duration | None = timedelta(hours=1)
    feedback: Duration | None = None
    data: bool | Duration = True

    @field_validator("data", mode="before")
    @classmethod
    def _flag_or_duration(cls, value: object) -> object:
        if isinstance(value, bool | timedelta):
            return value
        if not isinstance(value, str):
            raise ValueError(f"expected true, false or a duration such as 2d, got {value!r}")
        try:
            return parse_duration(value)
        except ValueError as exc:
            if "positive" in str(exc):
                raise
            raise ValueError(
                f"expected true, false or a duration such as 2d, got {value!r}"
            ) from None

    @property
    def data_limit(self) -> timedelta | None:
        """The age `data` allows the source when the data has no time column."""
        return self.data if isinstance(self.data, timedelta) else None


class FeedbackSpec(_Section):
    """How delayed ground truth (`keel feedback`) is joined to logged predictions: by the
    prediction id keel returned, or by the entity key (`data.entity_key`) and time."""

    join: Literal["id", "entity"] = "id"
    id_column: str = Field(default="prediction_id", min_length=1)
    label_column: str = Field(default="label", min_length=1)
    #: For entity joins: the column with the time the label is about.
    time_column: str | None = Field(default=None, min_length=1)
    #: For entity joins: how long before the label's time a prediction may be to match.
    max_lag: Duration = timedelta(days=1)
    #: The performance metric over labelled predictions; default: the first of `metrics`.
    metric: str | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None and value not in KNOWN_METRICS:
            raise ValueError(
                f"unknown metric {value!r}: use one of {', '.join(sorted(KNOWN_METRICS))}"
            )
        return value

    @field_validator("max_lag")
    @classmethod
    def _positive_lag(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a positive duration like 1h or 7d")
        return value

    @model_validator(mode="after")
    def _entity_needs_time(self) -> FeedbackSpec:
        if self.join == "entity" and self.time_column is None:
            raise ValueError(
                "time_column is required when join is 'entity': name the column holding "
                "the time each label is about"
            )
        return self


class MonitoringSpec(_Section):
    """What `keel monitor` compares, how it cuts windows, and which alerts it raises."""

    window: Duration = timedelta(days=1)
    #: Cut windows by when predictions were made, or by the event time in the requests
    #: (`data.timestamp`, when requests carry it): replays and backfills need the latter.
    time: Literal["prediction", "event"] = "prediction"
    #: Windows with fewer predictions are reported but never judged.
    min_rows: int = Field(default=200, ge=1)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    feedback: FeedbackSpec = Field(default_factory=FeedbackSpec)
    freshness: FreshnessSpec = Field(default_factory=FreshnessSpec)
    #: Measure training-serving skew on the newest window (needs `data.entity_key`).
    skew: bool = True
    #: Alert rules; unset means keel's defaults (`keel.monitoring.alerts.default_rules`).
    alerts: list[AlertRule] | None = None

    @field_validator("alerts")
    @classmethod
    def _unique_rule_names(cls, rules: list[AlertRule] | None) -> list[AlertRule] | None:
        names = [rule.name for rule in rules or []]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(repeated)}")
        return rules

    prometheus: bool = True
