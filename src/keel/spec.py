"""The project spec, `keel.yaml`: its schema, loading, and errors that name the key path.

Every section is validated when present; unknown keys are refused (a typo must not be silently
ignored). Paths in the spec are relative to the folder holding keel.yaml. The document carries
`version: 1`, independent of Python module paths, so that old files stay readable.
"""

from __future__ import annotations

import difflib
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from keel.domain.duration import format_duration, parse_duration
from keel.domain.metric import KNOWN_METRICS, direction_of, direction_words, worse_side
from keel.errors import ConfigError

__all__ = [
    "KNOWN_METRICS",
    "SPEC_FILENAME",
    "SPEC_VERSION",
    "ApprovalPolicy",
    "BeatsChampionGate",
    "CanaryPolicy",
    "ContractPassedGate",
    "DataSpec",
    "DriftSpec",
    "FeaturesSpec",
    "FeedbackSpec",
    "Gate",
    "InferenceContractGate",
    "MetricSpec",
    "MetricThresholdGate",
    "MonitoringSpec",
    "Owners",
    "PerformanceTrigger",
    "PredictionLogSpec",
    "ProjectSpec",
    "ReleaseSpec",
    "RetrainingSpec",
    "RetrainingTriggers",
    "ServingSpec",
    "SplitSpec",
    "SqlSource",
    "StorageSpec",
    "TrainingSpec",
    "load_spec",
    "parse_spec",
]

SPEC_FILENAME: Final = "keel.yaml"
SPEC_VERSION: Final = 1

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_ENTRY_POINT = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_COLUMN_HINT = "a column name"


def _duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise ValueError(f"expected a duration like 30s, 15m, 1h or 7d, got {value!r}")
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
]


def _entry_point(value: object) -> object:
    if not isinstance(value, str) or not _ENTRY_POINT.match(value):
        raise ValueError(f"expected 'module:function' (e.g. 'features:build'), got {value!r}")
    return value


EntryPoint = Annotated[str, BeforeValidator(_entry_point)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Owners(_Section):
    """The person or team answerable for each stage; alerts, approval requests and failed
    gates name them (and audit events carry the name to webhooks)."""

    #: What each stage answers for, in the words `keel owners` shows.
    SCOPES: ClassVar[dict[str, str]] = {
        "data": "data contract and dataset snapshots",
        "training": "training runs and the models they produce",
        "release": "release gates, approval requests and alias moves",
        "monitoring": "monitoring windows and the alerts they raise",
    }

    data: str | None = None
    training: str | None = None
    release: str | None = None
    monitoring: str | None = None

    def of(self, stage: str) -> str | None:
        """The owner of `stage` (one of `SCOPES`), or None when keel.yaml names nobody."""
        if stage not in self.SCOPES:
            raise ValueError(f"unknown stage {stage!r}: expected one of {', '.join(self.SCOPES)}")
        owner: str | None = getattr(self, stage)
        return owner or None

    def missing(self) -> list[str]:
        return [stage for stage in self.SCOPES if not self.of(stage)]


class StorageSpec(_Section):
    """Where metadata and artifacts live. `KEEL_DB_URL` and `KEEL_ARTIFACTS` override these."""

    db_url: str | None = None
    artifacts: str | None = None


class SqlSource(_Section):
    """A SQL query run through a SQLAlchemy URL."""

    query: str = Field(min_length=1)
    url: str = Field(min_length=1)


class DataSpec(_Section):
    """The raw data: where it is, its timestamp, target and key columns, and its contract.

    Every raw column except the target is a model input (a field every request must carry)
    unless `exclude` names it: excluded columns stay in the dataset version and its contract,
    but are never passed to `features.build`, required in requests, or profiled for drift
    (e.g. bike rentals' `casual` and `registered`, which add up to the target). The target,
    the timestamp and the entity key cannot be excluded.
    """

    source: str | SqlSource
    format: Literal["auto", "csv", "parquet"] = "auto"
    timestamp: str | None = None
    target: str | None = None
    entity_key: list[str] = Field(default_factory=list)
    contract: str | None = None
    exclude: list[str] = Field(default_factory=list)

    @field_validator("exclude")
    @classmethod
    def _exclude_inputs_only(cls, value: list[str], info: ValidationInfo) -> list[str]:
        seen: set[str] = set()
        for name in value:
            if not name.strip():
                raise ValueError("expected column names, got an empty one")
            if name in seen:
                raise ValueError(f"column '{name}' is listed twice")
            seen.add(name)
        roles = [
            ("data.target", info.data.get("target")),
            ("data.timestamp", info.data.get("timestamp")),
            *(("data.entity_key", key) for key in info.data.get("entity_key") or []),
        ]
        for role, column in roles:
            if column in seen:
                raise ValueError(
                    f"column '{column}' is {role} and cannot be excluded "
                    "(exclude names raw columns that must not be model inputs)"
                )
        return value

    def model_inputs(self, columns: list[str]) -> list[str]:
        """The raw columns a model takes, in data order: all but the target and `exclude`.

        Raises ConfigError naming `data.exclude` for an excluded column the data lacks.
        """
        unknown = [name for name in self.exclude if name not in columns]
        if unknown:
            raise ConfigError(
                f"data.exclude: column '{unknown[0]}' is not in the data; "
                f"its columns are {', '.join(columns)}",
                problems=[("data.exclude", f"'{name}' is not a column") for name in unknown],
            )
        left_out = {self.target, *self.exclude}
        return [name for name in columns if name not in left_out]

    @field_validator("source", mode="before")
    @classmethod
    def _source_shape(cls, value: object) -> object:
        if not isinstance(value, str | dict | SqlSource):
            raise ValueError(
                "expected a path, glob or folder, or a mapping {query, url}, "
                f"got {_describe(value)}"
            )
        return value

    @field_validator("source")
    @classmethod
    def _source_not_blank(cls, value: str | SqlSource) -> str | SqlSource:
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                "expected a path, glob or folder, or {query, url}; got an empty string"
            )
        return value

    @field_validator("entity_key", "exclude", mode="before")
    @classmethod
    def _one_key(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


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


class _GateBase(_Section):
    #: The aliases this gate guards; None: every promotion (`keel promote ... --to ALIAS`).
    aliases: list[str] | None = None

    def applies_to(self, alias: str) -> bool:
        return self.aliases is None or alias in self.aliases


class MetricThresholdGate(_GateBase):
    """The candidate's metric on the evaluation data must lie within [min, max]."""

    type: Literal["metric_threshold"]
    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_bound(self) -> MetricThresholdGate:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class BeatsChampionGate(_GateBase):
    """The candidate must beat the alias holder, both scored on the same evaluation data."""

    type: Literal["beats_champion"]
    metric: str
    #: Positive: must beat the holder by this much; negative: may trail it by at most this much.
    margin: float = 0.0
    #: The margin is a fraction of the holder's value (0.01: one percent better).
    relative: bool = False
    #: Whose holder is the champion; None: the alias being promoted to. A canary move
    #: usually compares with `production`.
    alias: str | None = None


class ContractPassedGate(_GateBase):
    """The training data passed its contract."""

    type: Literal["contract_passed"]


class InferenceContractGate(_GateBase):
    """The model answers sample requests in its stored request/response schema."""

    type: Literal["inference_contract"]
    samples: int = Field(default=100, gt=0)


Gate = Annotated[
    MetricThresholdGate | BeatsChampionGate | ContractPassedGate | InferenceContractGate,
    Field(discriminator="type"),
]
_GATE_TAGS: Final = frozenset(
    {"metric_threshold", "beats_champion", "contract_passed", "inference_contract"}
)


class ApprovalPolicy(_Section):
    required: int = Field(default=1, ge=0)
    roles: list[str] = Field(default_factory=list)
    #: Aliases whose moves need approval; others (e.g. `candidate`) move on gates alone.
    aliases: list[str] = Field(default_factory=lambda: ["production"])


#: The aliases a project may promote to when keel.yaml does not list its own.
DEFAULT_ALIASES: Final = ("candidate", "staging", "canary", "production")
_ALIAS: Final = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class ReleaseSpec(_Section):
    #: The aliases versions may be promoted to; `candidate` (where training registers new
    #: versions) is always one. A promotion to any other name is refused, so a typo
    #: (`--to prod`) cannot create an alias that no approval policy covers.
    aliases: list[str] = Field(default_factory=lambda: list(DEFAULT_ALIASES))
    gates: list[Gate] = Field(default_factory=list)
    approvals: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    request_ttl: Duration = timedelta(days=7)
    #: Every this many audit events, a signed checkpoint of the log's head is written to the
    #: artifact store (`keel audit-log verify` writes one too): a database writer can drop
    #: at most the events after the newest one unnoticed.
    audit_checkpoint_every: int = Field(default=100, ge=1)
    #: What loading a version without a signature does (one registered before keel signed
    #: packages): `refuse`, or `warn` (load it, logging a warning each time). `warn` trusts
    #: whoever can write the metadata and artifact stores with code that runs in the server.
    unsigned_packages: Literal["refuse", "warn"] = "refuse"

    @field_validator("aliases")
    @classmethod
    def _valid_aliases(cls, value: list[str]) -> list[str]:
        for name in value:
            if not isinstance(name, str) or not _ALIAS.match(name) or name == "latest":
                raise ValueError(
                    f"alias {name!r}: expected lowercase letters, digits, '_' or '-', starting "
                    "with a letter (at most 63), and not 'latest'"
                )
        duplicates = sorted({n for n in value if value.count(n) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        return value

    @property
    def declared_aliases(self) -> tuple[str, ...]:
        """Every alias a version may be promoted to: `candidate`, then those listed."""
        return ("candidate", *(name for name in self.aliases if name != "candidate"))


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


class PredictionLogSpec(_Section):
    """How served predictions are logged."""

    enabled: bool = True
    #: `durable`: a request is answered once its rows are fsynced to the local spool, so no
    #: crash loses an acknowledged prediction. `buffered`: answered once its rows are in
    #: memory; a hard crash loses up to `flush_interval` plus one commit of them.
    durability: Literal["buffered", "durable"] = "durable"
    #: How often buffered predictions are committed to the store.
    flush_interval: Duration = timedelta(milliseconds=200)
    #: Predictions held in memory beyond this go to the spool (readiness fails if it cannot
    #: be written).
    max_buffer: int = Field(default=100_000, gt=0)
    #: The local folder of the spool (rows on their way to the store, through outages and
    #: restarts) and of `dead-letter/` (rows the store refused). Relative to the project
    #: folder; `.keel/spool` when unset. Replicas may share it: each has its own files.
    spool_dir: Path | None = None

    @field_validator("flush_interval")
    @classmethod
    def _positive_interval(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a positive duration like 200ms or 1s")
        return value


class ServingSpec(_Section):
    """What `keel serve` answers with, and its limits."""

    #: Share of a model's requests answered by the version holding `canary`, while one does.
    canary_share: float = Field(default=0.1, ge=0, le=1)
    #: Aliases whose holders also score every request: logged, never returned.
    shadow: list[str] = Field(default_factory=list)
    #: How often a server looks for alias moves (promotion, rollback) to reload.
    reload_interval: Duration = timedelta(seconds=1)
    #: Largest request body accepted (413 beyond).
    max_request_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    #: Most rows one request may carry (413 beyond).
    max_rows: int = Field(default=10_000, gt=0)
    #: Values outside the data contract's ranges and domains recorded with the version:
    #: `warn` answers the request, logs and counts them (`keel_input_contract_violations_total`);
    #: `enforce` refuses it (422 naming the input, the row and the rule). `warn` by default:
    #: an inferred contract holds what training saw, and production brings new months and
    #: hotter days that monitoring should report as drift, not refuse as an outage.
    input_contract: Literal["enforce", "warn"] = "warn"
    #: How long a client may take to send a request's body once its headers are in (408
    #: and the connection closed beyond): half-sent bodies would otherwise hold connections.
    body_timeout: Duration = timedelta(seconds=10)
    #: How long SIGTERM may take: drain requests in flight, commit the log, spill the rest
    #: to the spool. Keep it below the orchestrator's grace period (Kubernetes: 30 s; the
    #: generated manifests allow this plus 10 s).
    shutdown_timeout: Duration = timedelta(seconds=20)
    log: PredictionLogSpec = Field(default_factory=PredictionLogSpec)

    @field_validator("shutdown_timeout")
    @classmethod
    def _positive_timeout(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a positive duration like 20s")
        return value

    @field_validator("body_timeout")
    @classmethod
    def _positive_body_timeout(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a positive duration like 10s")
        return value


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


class ProjectSpec(_Section):
    """The whole of keel.yaml."""

    version: int = SPEC_VERSION
    name: str
    description: str = ""
    owners: Owners = Field(default_factory=Owners)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    data: DataSpec | None = None
    features: FeaturesSpec | None = None
    training: TrainingSpec | None = None
    metrics: list[MetricSpec] = Field(default_factory=list)
    release: ReleaseSpec = Field(default_factory=ReleaseSpec)
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    retraining: RetrainingSpec = Field(default_factory=RetrainingSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SPEC_VERSION:
            raise ValueError(
                f"this keel reads keel.yaml version {SPEC_VERSION}, got {value}"
                + ("; upgrade keelml" if value > SPEC_VERSION else "")
            )
        return value

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "expected lowercase letters, digits, '.', '_' or '-' (at most 63, "
                f"starting with a letter or digit), got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _metrics_consistent(self) -> ProjectSpec:
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"metrics: listed more than once: {', '.join(duplicates)}")
        if not self.metrics:
            return self
        for index, gate in enumerate(self.release.gates):
            metric = getattr(gate, "metric", None)
            if metric is not None and metric not in names:
                raise ValueError(
                    f"release.gates[{index}].metric: {metric!r} is not in metrics "
                    f"({', '.join(names)})"
                )
        return self

    @model_validator(mode="after")
    def _directions_consistent(self) -> ProjectSpec:
        """A threshold on the wrong side of a metric would fire on improvement and never
        on decline: refuse it, naming the key and the side that fits."""
        trigger = self.retraining.triggers.performance
        if trigger is not None:
            higher = direction_of(trigger.metric, self.metrics)
            if higher is None:
                raise ValueError(
                    f"retraining.triggers.performance.metric: unknown metric {trigger.metric!r}: "
                    f"use one of {', '.join(sorted(KNOWN_METRICS))}, or list it in metrics "
                    "with greater_is_better"
                )
            _check_side(
                f"retraining.triggers.performance.{trigger.side}",
                trigger.metric,
                higher,
                trigger.side,
                "a trigger",
            )
        for index, rule in enumerate(self.monitoring.alerts or []):
            if rule.signal != "performance" or rule.subject is None:
                continue
            if rule.threshold is None or "direction" not in rule.model_fields_set:
                continue  # the metric's own worse side applies (keel.monitoring.alerts)
            higher = direction_of(rule.subject, self.metrics)
            if higher is not None:
                _check_side(
                    f"monitoring.alerts[{index}].direction",
                    rule.subject,
                    higher,
                    rule.direction,
                    "a rule",
                )
        return self

    @model_validator(mode="after")
    def _aliases_declared(self) -> ProjectSpec:
        """Every alias keel.yaml names elsewhere is one it declares, so a typo in a gate or a
        policy cannot silently guard (or serve) nothing."""
        declared = self.release.declared_aliases
        named: list[tuple[str, str]] = []
        for index, gate in enumerate(self.release.gates):
            named.extend((f"release.gates[{index}].aliases", a) for a in gate.aliases or [])
            champion = getattr(gate, "alias", None)
            if champion is not None:
                named.append((f"release.gates[{index}].alias", champion))
        named.extend(("release.approvals.aliases", a) for a in self.release.approvals.aliases)
        named.extend(("serving.shadow", a) for a in self.serving.shadow)
        retraining = self.retraining
        if retraining.promotion == "canary" or any(
            value is not None for value in retraining.triggers.model_dump().values()
        ):
            # A canary is promoted on to production when it holds up.
            targets = ["canary", "production"] if retraining.promotion == "canary" else []
            named.extend(("retraining.promotion", a) for a in targets or ["production"])
        for key, alias in named:
            if alias not in declared:
                raise ValueError(
                    f"{key}: alias {alias!r} is not declared in release.aliases "
                    f"({', '.join(declared)})"
                )
        return self

    @property
    def primary_metric(self) -> MetricSpec | None:
        return self.metrics[0] if self.metrics else None


def _check_side(key: str, metric: str, higher: bool, side: str, what: str) -> None:
    wanted = worse_side(higher)
    if side != wanted:
        raise ValueError(
            f"{key}: {metric} is a metric where {direction_words(higher)}, so {what} "
            f"{side} the threshold would fire as it improves and never as it worsens; "
            f"use {wanted}"
        )


# --- loading -------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys, which PyYAML would silently overwrite."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
            )
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    kind = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(type(value))
    if kind and not isinstance(value, str | bool):
        return kind
    return text


def _key_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    previous: int | str | None = None
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif isinstance(previous, int) and item in _GATE_TAGS:
            pass  # pydantic repeats the union tag after the index; the user never wrote it
        elif item in ("str", "SqlSource", "function-before[_from_name(), MetricSpec]"):
            pass  # the member of a union tried; the key path is the field itself
        else:
            parts.append(("." if parts else "") + str(item))
        previous = item
    return "".join(parts) or "(top level)"


_RULES: Final[dict[str, str]] = {
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "timedelta_type": "expected a duration like 30s, 15m, 1h or 7d",
    "timedelta_parsing": "expected a duration like 30s, 15m, 1h or 7d",
}


def _rule(error: Any, siblings: list[str]) -> str:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        close = difflib.get_close_matches(key, siblings, n=1)
        return "unknown key" + (f"; did you mean {close[0]!r}?" if close else "")
    if kind in _RULES:
        return f"{_RULES[kind]}, got {_describe(value)}"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}, got {_describe(value)}"
    if kind == "union_tag_invalid":
        return f"unknown type {ctx.get('tag')!r}: expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return f"missing key 'type': expected one of {', '.join(sorted(_GATE_TAGS))}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = {
            "greater_than": "greater than",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "less_than_equal": "at most",
        }[kind]
        limit = next(iter(ctx.values()), "?")
        return f"expected a value {bound} {limit}, got {_describe(value)}"
    if kind == "string_too_short":
        return "expected a non-empty string"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return f"{error['msg'][0].lower()}{error['msg'][1:]}, got {_describe(value)}"


def _fields_at(loc: tuple[int | str, ...]) -> list[str]:
    """Names of the keys allowed where an unknown key was found, for 'did you mean'."""
    model: Any = ProjectSpec
    for item in loc[:-1]:
        if isinstance(item, int) or model is None:
            continue
        field = getattr(model, "model_fields", {}).get(item)
        if field is None:
            model = _gate_model(item)
            continue
        annotation = field.annotation
        model = _first_model(annotation)
    return list(getattr(model, "model_fields", {}) or [])


def _gate_model(tag: str | int) -> Any:
    models: dict[str | int, type[BaseModel]] = {
        "metric_threshold": MetricThresholdGate,
        "beats_champion": BeatsChampionGate,
        "contract_passed": ContractPassedGate,
        "inference_contract": InferenceContractGate,
    }
    return models.get(tag)


def _first_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        rule = _rule(item, _fields_at(loc) if item["type"] == "extra_forbidden" else [])
        path = _key_path(loc)
        # Cross-field rules already name their key path in the message.
        if item["type"] == "value_error" and loc == () and ": " in rule:
            path, _, rule = rule.partition(": ")
        problem = (path, rule)
        if problem not in problems:
            problems.append(problem)
    return problems


def parse_spec(text: str, *, source: str = SPEC_FILENAME) -> ProjectSpec:
    """Validate keel.yaml text. Raises ConfigError listing every problem with its key path."""
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = exc.problem or str(exc)
        raise ConfigError(
            f"{source}: not valid YAML at {where}: {problem}",
            problems=[("(top level)", f"not valid YAML at {where}: {problem}")],
            hint="fix the YAML syntax; `keel init` writes a commented example",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        rule = f"expected a mapping of sections, got {_describe(document)}"
        raise ConfigError(f"{source}: {rule}", problems=[("(top level)", rule)])
    try:
        return ProjectSpec.model_validate(document)
    except ValidationError as exc:
        problems = _problems(exc)
        lines = "\n".join(f"  {path}: {rule}" for path, rule in problems)
        count = len(problems)
        raise ConfigError(
            f"{source}: {count} problem{'s' if count != 1 else ''}\n{lines}",
            problems=problems,
            hint="fix the keys above; `keel init` writes a commented example",
        ) from None


def load_spec(path: Path) -> ProjectSpec:
    """Read and validate keel.yaml at `path`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file",
            hint="run `keel init` to create a project, or pass --project DIR",
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}): save keel.yaml as UTF-8"
        ) from None
    return parse_spec(text, source=str(path))
