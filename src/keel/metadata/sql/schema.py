"""The metadata tables, in SQLAlchemy Core, in one module of about 750 lines on purpose: they
are one `MetaData`, the whole schema the migrations are compared with, declarations only (no
logic), in migration order, and their foreign keys run across aggregates (runs to datasets,
versions to runs, alias history to versions): split by aggregate, it would be read in pieces
that only make sense together.

This describes the schema the newest migration produces; it is never used to create
tables (`migrations/` does that, and a test checks the two agree on every backend).
Later aggregates add their tables here, each with its own migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = [
    "DIGEST_LENGTH",
    "NAME_LENGTH",
    "RUN_ID_LENGTH",
    "SHORT_ID_LENGTH",
    "UTCDateTime",
    "alerts",
    "alias_history",
    "api_tokens",
    "approvals",
    "artifact_holders",
    "artifacts",
    "audit_events",
    "audit_head",
    "dataset_columns",
    "dataset_files",
    "datasets",
    "feedback",
    "gate_evaluations",
    "label_history",
    "metadata",
    "model_aliases",
    "model_versions",
    "models",
    "monitor_metrics",
    "prediction_segments",
    "predictions",
    "reference_profiles",
    "release_requests",
    "run_artifacts",
    "run_metrics",
    "run_params",
    "run_steps",
    "run_tags",
    "runs",
    "step_cache",
    "users",
    "webhooks",
]

#: Longest model or alias name (the project-name rule of keel.yaml).
NAME_LENGTH: Final = 63

#: Length of a run id: 32 lowercase hex characters (UUIDv7 layout).
RUN_ID_LENGTH: Final = 32

#: Room for `algorithm:hex` of any digest keel may adopt (BLAKE3 needs 71).
DIGEST_LENGTH: Final = 100

#: Constraint names are part of the schema: migrations that alter a constraint must
#: name it, and SQLite's batch mode recreates tables by those names.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, stored as UTC and always returned timezone-aware in UTC.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones, so the value is stored
    as naive UTC text and the zone is put back on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # A naive time is ambiguous; guessing the local zone would silently shift it.
            raise ValueError(f"timestamps must be timezone-aware, got naive {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


artifacts = Table(
    "artifacts",
    metadata,
    Column("digest", String(DIGEST_LENGTH), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("media_type", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    CheckConstraint("size >= 0", name="size_not_negative"),
    Index(None, "created_at"),
)

artifact_holders = Table(
    "artifact_holders",
    metadata,
    Column(
        "digest",
        String(DIGEST_LENGTH),
        # RESTRICT: an object someone still holds must never lose its record.
        ForeignKey("artifacts.digest", ondelete="RESTRICT"),
        primary_key=True,
    ),
    Column("holder", Text, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# --- dataset versions (migration 0002) ----------------------------------------------------

datasets = Table(
    "datasets",
    metadata,
    Column("id", String(DIGEST_LENGTH), primary_key=True),
    Column("source", Text, nullable=False),
    Column("query", Text, nullable=True),
    Column("format", Text, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("timestamp_column", Text, nullable=True),
    Column("time_start", UTCDateTime, nullable=True),
    Column("time_end", UTCDateTime, nullable=True),
    # RESTRICT: the objects a version is made of must keep their records.
    Column(
        "parquet",
        String(DIGEST_LENGTH),
        ForeignKey("artifacts.digest", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column(
        "profile",
        String(DIGEST_LENGTH),
        ForeignKey("artifacts.digest", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    # JSON list of {position, name, reason}: source columns not in the data (row indexes).
    Column("left_out", Text, nullable=True),
    # "manifest" when `parquet` holds the digest of a manifest of a lake table's files
    # (migration 0011); NULL for a Parquet copy.
    Column("storage", Text, nullable=True),
    CheckConstraint("row_count >= 0", name="row_count_not_negative"),
    Index(None, "created_at"),
)

dataset_columns = Table(
    "dataset_columns",
    metadata,
    Column(
        "dataset_id",
        String(DIGEST_LENGTH),
        ForeignKey("datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("type", Text, nullable=False),
)

dataset_files = Table(
    "dataset_files",
    metadata,
    Column(
        "dataset_id",
        String(DIGEST_LENGTH),
        ForeignKey("datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("path", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("digest", String(DIGEST_LENGTH), nullable=False),
    CheckConstraint("size >= 0", name="size_not_negative"),
)


# --- runs (migration 0003) ------------------------------------------------------------------

runs = Table(
    "runs",
    metadata,
    Column("id", String(RUN_ID_LENGTH), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Column("created_by", Text, nullable=False),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    # RESTRICT: a run's lineage must keep pointing at a recorded dataset version.
    Column(
        "dataset_id",
        String(DIGEST_LENGTH),
        ForeignKey("datasets.id", ondelete="RESTRICT"),
        nullable=True,
    ),
    Column("git_commit", Text, nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    Column("git_diff_hash", Text, nullable=True),
    Column("feature_code_hash", Text, nullable=True),
    Column("training_code_hash", Text, nullable=True),
    Column("environment", Text, nullable=True),
    Column("seed", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    CheckConstraint("status IN ('running', 'completed', 'failed')", name="status_known"),
    Index(None, "started_at"),
    # The reaper scans running runs on every `keel runs list`.
    Index(None, "status"),
)

run_params = Table(
    "run_params",
    metadata,
    Column(
        "run_id",
        String(RUN_ID_LENGTH),
        ForeignKey("runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

# No primary key: a series may hold several points at one step (MLflow allows it too),
# and a surrogate key would only slow the bulk inserts this table exists for.
run_metrics = Table(
    "run_metrics",
    metadata,
    Column(
        "run_id",
        String(RUN_ID_LENGTH),
        ForeignKey("runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key", Text, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("value", Double, nullable=False),
    Column("timestamp", UTCDateTime, nullable=False),
    Index(None, "run_id", "key", "step"),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column(
        "run_id",
        String(RUN_ID_LENGTH),
        ForeignKey("runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column(
        "run_id",
        String(RUN_ID_LENGTH),
        ForeignKey("runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("name", Text, primary_key=True),
    Column(
        "digest",
        String(DIGEST_LENGTH),
        ForeignKey("artifacts.digest", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("size", BigInteger, nullable=False),
    CheckConstraint("size >= 0", name="size_not_negative"),
)

run_steps = Table(
    "run_steps",
    metadata,
    Column(
        "run_id",
        String(RUN_ID_LENGTH),
        ForeignKey("runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("step", Text, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("cache_key", Text, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column(
        "output",
        String(DIGEST_LENGTH),
        ForeignKey("artifacts.digest", ondelete="RESTRICT"),
        nullable=True,
    ),
    Column("seconds", Double, nullable=False),
    CheckConstraint("outcome IN ('ran', 'cache_hit')", name="outcome_known"),
)

step_cache = Table(
    "step_cache",
    metadata,
    Column("cache_key", Text, primary_key=True),
    Column("step", Text, nullable=False),
    Column(
        "output",
        String(DIGEST_LENGTH),
        ForeignKey("artifacts.digest", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column(
        "run_id",
        String(RUN_ID_LENGTH),
        ForeignKey("runs.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("created_at", UTCDateTime, nullable=False),
)


# --- model registry (migration 0004) --------------------------------------------------------

models = Table(
    "models",
    metadata,
    Column("name", String(NAME_LENGTH), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column(
        "model",
        String(NAME_LENGTH),
        ForeignKey("models.name", ondelete="RESTRICT"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True, autoincrement=False),
    # RESTRICT: a version's lineage and package must stay recorded as long as it is.
    Column(
        "run_id",
        String(RUN_ID_LENGTH),
        ForeignKey("runs.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column(
        "package",
        String(DIGEST_LENGTH),
        ForeignKey("artifacts.digest", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("flavor", Text, nullable=False),
    Column("inference_contract", Text, nullable=False),  # JSON object
    Column("metrics", Text, nullable=False),  # JSON object: name -> finite number
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    # JSON {"algorithm", "key_id", "signature"} over name, version, package and flavor
    # (keel.models.signing; migration 0010); NULL for versions registered before.
    Column("signature", Text, nullable=True),
    CheckConstraint("version >= 1", name="version_positive"),
    # "Which versions did this run produce?" (lineage, reproduce).
    Index(None, "run_id"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model", String(NAME_LENGTH), primary_key=True),
    Column("alias", String(NAME_LENGTH), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("set_at", UTCDateTime, nullable=False),
    Column("set_by", Text, nullable=False),
    # RESTRICT: an alias always names a recorded version.
    ForeignKeyConstraint(
        ["model", "version"],
        ["model_versions.model", "model_versions.version"],
        ondelete="RESTRICT",
    ),
)


# --- releases: audit log, alias history, gates, requests, identity (migration 0005) ----------

#: Length of a release request, gate evaluation, token or webhook id (hex).
SHORT_ID_LENGTH: Final = 32

audit_events = Table(
    "audit_events",
    metadata,
    # Assigned by the writer under the audit_head row lock: gapless, in commit order.
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("model", String(NAME_LENGTH), nullable=True),
    Column("version", Integer, nullable=True),
    Column("alias", String(NAME_LENGTH), nullable=True),
    Column("subject", Text, nullable=True),  # request, user, token or webhook id
    Column("reason", Text, nullable=True),
    Column("evidence", Text, nullable=False),  # canonical JSON object, hashed as stored
    Column("prev_hash", String(DIGEST_LENGTH), nullable=False),
    Column("hash", String(DIGEST_LENGTH), nullable=False, unique=True),
    CheckConstraint("seq >= 1", name="seq_positive"),
    # "What happened to this model?" (`keel audit-log MODEL`).
    Index(None, "model", "seq"),
)

#: One row (id 1): the newest event's seq and hash. Appends lock it, so events chain in
#: order across processes; verify compares the chain's end with it, so deleting the newest
#: events is detected too.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(DIGEST_LENGTH), nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

#: Every move of every alias, so rollback knows the previous holder.
alias_history = Table(
    "alias_history",
    metadata,
    Column("seq", BigInteger, ForeignKey("audit_events.seq"), primary_key=True),
    Column("model", String(NAME_LENGTH), nullable=False),
    Column("alias", String(NAME_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    Column("previous", Integer, nullable=True),
    Column("kind", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", Text, nullable=False),
    CheckConstraint("kind IN ('move', 'rollback')", name="kind_known"),
    ForeignKeyConstraint(
        ["model", "version"],
        ["model_versions.model", "model_versions.version"],
        ondelete="RESTRICT",
    ),
    Index(None, "model", "alias", "seq"),
)

gate_evaluations = Table(
    "gate_evaluations",
    metadata,
    Column("id", String(SHORT_ID_LENGTH), primary_key=True),
    Column("model", String(NAME_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    Column("alias", String(NAME_LENGTH), nullable=False),
    Column("holder", Integer, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("results", Text, nullable=False),  # JSON list of gate results with evidence
    ForeignKeyConstraint(
        ["model", "version"],
        ["model_versions.model", "model_versions.version"],
        ondelete="RESTRICT",
    ),
    Index(None, "model", "version"),
)

release_requests = Table(
    "release_requests",
    metadata,
    Column("id", String(SHORT_ID_LENGTH), primary_key=True),
    Column("model", String(NAME_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    Column("alias", String(NAME_LENGTH), nullable=False),
    Column("holder", Integer, nullable=True),  # the alias holder when requested
    Column(
        "evaluation",
        String(SHORT_ID_LENGTH),
        ForeignKey("gate_evaluations.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("requested_by", Text, nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=True),
    Column("required", Integer, nullable=False),
    Column("roles", Text, nullable=False),  # JSON list: an approver needs one of them
    Column("status", String(16), nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("closed_by", Text, nullable=True),
    Column("outcome", Text, nullable=True),
    CheckConstraint(
        "status IN ('pending', 'approved', 'rejected', 'expired', 'superseded', 'refused')",
        name="status_known",
    ),
    CheckConstraint("required >= 1", name="required_positive"),
    ForeignKeyConstraint(
        ["model", "version"],
        ["model_versions.model", "model_versions.version"],
        ondelete="RESTRICT",
    ),
    Index(None, "status", "requested_at"),
    Index(None, "model", "alias", "status"),
)

approvals = Table(
    "approvals",
    metadata,
    Column(
        "request_id",
        String(SHORT_ID_LENGTH),
        ForeignKey("release_requests.id", ondelete="RESTRICT"),
        primary_key=True,
    ),
    Column("actor", Text, primary_key=True),
    Column("decision", String(8), nullable=False),
    Column("comment", Text, nullable=True),
    Column("roles", Text, nullable=False),  # JSON list: the actor's roles when deciding
    Column("at", UTCDateTime, nullable=False),
    CheckConstraint("decision IN ('approve', 'reject')", name="decision_known"),
)

users = Table(
    "users",
    metadata,
    Column("name", String(NAME_LENGTH), primary_key=True),
    Column("roles", Text, nullable=False),  # JSON list, sorted
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(SHORT_ID_LENGTH), primary_key=True),  # the token's public part
    Column(
        "user",
        String(NAME_LENGTH),
        ForeignKey("users.name", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("secret_hash", String(DIGEST_LENGTH), nullable=False),  # never the secret
    Column("label", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Index(None, "user"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(SHORT_ID_LENGTH), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),  # HMAC key: the receiver holds the same
    Column("events", Text, nullable=False),  # JSON list of event kinds, or ["*"]
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("cursor", BigInteger, nullable=False),  # newest audit seq delivered
    Column("failures", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
)


# --- prediction log (migration 0006) --------------------------------------------------------

#: Recent predictions, one row each, written in batches by the log's writer thread. No
#: foreign key to model_versions: a check per row would cost insert throughput, and the
#: server only logs versions it loaded from the registry. Compaction moves closed time
#: ranges into `prediction_segments` and deletes them here.
predictions = Table(
    "predictions",
    metadata,
    Column("id", String(RUN_ID_LENGTH), primary_key=True),  # time-ordered (UUIDv7 layout)
    Column("at", UTCDateTime, nullable=False),
    Column("model", String(NAME_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    Column("slot", String(16), nullable=False),
    Column("client_id", Text, nullable=True),
    Column("shadow_of", String(RUN_ID_LENGTH), nullable=True),
    Column("latency_ms", Double, nullable=False),
    Column("inputs", Text, nullable=False),  # JSON object: input name -> value
    Column("outputs", Text, nullable=False),  # JSON object: output name -> value
    # Window reads and compaction select one model's rows by time.
    Index(None, "model", "at"),
)

#: Compacted predictions: Parquet objects in the artifact store (held against gc), one
#: model version's rows each, sorted by id; bounds are inclusive.
prediction_segments = Table(
    "prediction_segments",
    metadata,
    Column(
        "digest",
        String(DIGEST_LENGTH),
        ForeignKey("artifacts.digest", ondelete="RESTRICT"),
        primary_key=True,
    ),
    Column("model", String(NAME_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    Column("first_at", UTCDateTime, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
    Column("min_id", String(RUN_ID_LENGTH), nullable=False),
    Column("max_id", String(RUN_ID_LENGTH), nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("row_count > 0", name="row_count_positive"),
    CheckConstraint("min_id <= max_id", name="id_range"),
    Index(None, "model", "first_at"),
    # "Which segment holds this prediction id?" (`keel explain`).
    Index(None, "min_id"),
)

# --- monitoring (migration 0007) ---------------------------------------------------------------

#: A registered version's reference profile: the mergeable sketch (`keel.stats.sketch`) of the
#: rows monitoring compares production with, stored as a JSON object in the artifact store.
reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column("model", String(NAME_LENGTH), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column(
        "profile",
        String(DIGEST_LENGTH),
        ForeignKey("artifacts.digest", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("row_count", BigInteger, nullable=False),
    Column("source", Text, nullable=False),  # what the rows were, in words
    Column("created_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(
        ["model", "version"],
        ["model_versions.model", "model_versions.version"],
        ondelete="RESTRICT",
    ),
    CheckConstraint("row_count >= 0", name="row_count_not_negative"),
)

#: Delayed ground truth, one label per prediction (a later label for the same prediction
#: replaces the earlier one). `at` is the prediction's time, copied so windows join fast.
feedback = Table(
    "feedback",
    metadata,
    Column("prediction_id", String(RUN_ID_LENGTH), primary_key=True),
    Column("model", String(NAME_LENGTH), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("label", Text, nullable=False),  # JSON scalar
    Column("received_at", UTCDateTime, nullable=False),
    Column("received_by", Text, nullable=False),
    Index(None, "model", "at"),
    Index(None, "model", "received_at"),
)

#: Labels a later, different label replaced, oldest first per prediction (`revision` 1 is
#: the first label it had); the current one stays in `feedback`.
label_history = Table(
    "label_history",
    metadata,
    Column("prediction_id", String(RUN_ID_LENGTH), primary_key=True),
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("model", String(NAME_LENGTH), nullable=False),
    Column("label", Text, nullable=False),  # JSON scalar
    Column("received_at", UTCDateTime, nullable=False),
    Column("received_by", Text, nullable=False),
    Column("superseded_at", UTCDateTime, nullable=False),
    Column("superseded_by", Text, nullable=False),
    CheckConstraint("revision >= 1", name="revision_positive"),
)

#: Signals computed by `keel monitor`, one value per model version, window, signal and
#: subject (a feature, an output, or "" for the model): the history charts and /metrics read.
monitor_metrics = Table(
    "monitor_metrics",
    metadata,
    Column("model", String(NAME_LENGTH), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("window_start", UTCDateTime, primary_key=True),
    Column("window_end", UTCDateTime, primary_key=True),
    Column("signal", String(NAME_LENGTH), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("value", Double, nullable=True),
    Column("detail", Text, nullable=False),  # JSON object: the evidence behind the value
    Column("recorded_at", UTCDateTime, nullable=False),
    Index(None, "model", "signal", "window_end"),
)

#: Alerts raised by monitoring rules. While an alert is open, `open_key` (model, rule and
#: subject) is set and unique, so a signal that keeps firing updates one alert instead of
#: raising another; resolving clears it (NULLs never collide, on SQLite and PostgreSQL alike).
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(RUN_ID_LENGTH), primary_key=True),
    Column("model", String(NAME_LENGTH), nullable=False),
    Column("rule", String(NAME_LENGTH), nullable=False),
    Column("signal", String(NAME_LENGTH), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("open_key", String(400), nullable=True, unique=True),
    Column("owner", Text, nullable=True),
    Column("version", Integer, nullable=True),
    Column("value", Double, nullable=True),
    Column("threshold", Double, nullable=True),
    Column("message", Text, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON object
    Column("opened_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    CheckConstraint("state IN ('open', 'resolved')", name="state_known"),
    CheckConstraint("severity IN ('info', 'warning', 'critical')", name="severity_known"),
    CheckConstraint("(state = 'open') = (open_key IS NOT NULL)", name="open_key_while_open"),
    Index(None, "model", "state"),
    Index(None, "opened_at"),
)
