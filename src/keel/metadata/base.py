"""The metadata store port: one interface, split by aggregate, the same on every backend.

`keel.metadata.sql` implements it for SQLite (embedded default) and PostgreSQL. The schema
is created and upgraded only by Alembic migrations; later capabilities add aggregates
(datasets, runs, models, events) as attributes beside `artifacts`, each with a migration.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import NamedTuple, Self

from keel.domain.audit import AuditEvent, ChainReport
from keel.domain.dataset import DatasetVersion
from keel.domain.digest import Digest
from keel.domain.health import StoreHealth
from keel.domain.identity import Actor, Role
from keel.domain.model import CANDIDATE, Alias, ModelRef, ModelVersion, RegisteredModel
from keel.domain.monitoring import Alert, AlertDraft, MonitorMetric, ReferenceProfile
from keel.domain.prediction import LoggedPrediction, PredictionLogStats, PredictionSegment
from keel.domain.release import AliasMove, Decision, GateResult, ReleaseRequest
from keel.domain.run import (
    CachedStep,
    Metric,
    MetricSummary,
    Run,
    RunArtifact,
    RunStatus,
    StepRecord,
)

__all__ = [
    "ArtifactRecord",
    "ArtifactRecords",
    "AuditLog",
    "DatasetVersions",
    "Feedback",
    "FeedbackReceipt",
    "FeedbackRow",
    "Identities",
    "Label",
    "LabelRecord",
    "Labelled",
    "LoggedKey",
    "MetadataStore",
    "ModelRegistry",
    "Monitoring",
    "Predictions",
    "Releases",
    "Runs",
    "SchemaRevision",
    "Webhook",
    "Webhooks",
]


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """An object the project knows about, and who stored it."""

    digest: Digest
    size: int
    media_type: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class SchemaRevision:
    """Where a database's schema is, next to where this keel wants it."""

    current: str | None  # None: an empty database
    head: str  # the newest revision this keel knows

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


class ArtifactRecords(ABC):
    """Objects recorded in metadata, and the references (holders) that keep them alive.

    A holder is a string naming what needs the object, e.g. `dataset:3f2a...` or
    `run:42/model`. Garbage collection keeps every object with at least one holder.
    """

    @abstractmethod
    def record(
        self,
        digest: Digest,
        *,
        size: int,
        media_type: str,
        actor: str,
        holder: str | None = None,
    ) -> ArtifactRecord:
        """Record an object (idempotent) and, if given, a holder, in one transaction."""

    @abstractmethod
    def get(self, digest: Digest) -> ArtifactRecord:
        """The record; `NotFound` if the object was never recorded."""

    @abstractmethod
    def find(self, digest: Digest) -> ArtifactRecord | None:
        """The record, or None if the object was never recorded."""

    @abstractmethod
    def list(self, *, limit: int | None = None) -> builtins.list[ArtifactRecord]:
        """Records in the order they were made, oldest first."""

    @abstractmethod
    def count(self) -> int:
        """How many objects are recorded."""

    @abstractmethod
    def add_holder(self, digest: Digest, holder: str) -> None:
        """Reference a recorded object (idempotent); `NotFound` if it was never recorded."""

    @abstractmethod
    def remove_holder(self, digest: Digest, holder: str) -> None:
        """Drop one reference (idempotent)."""

    @abstractmethod
    def holders(self, digest: Digest) -> builtins.list[str]:
        """The holders of an object, sorted; empty if it has none."""

    @abstractmethod
    def referenced(self) -> set[Digest]:
        """Every digest with at least one holder: the roots garbage collection keeps."""

    @abstractmethod
    def forget(self, digests: Iterable[Digest]) -> int:
        """Delete records that have no holder; returns how many went."""


class DatasetVersions(ABC):
    """Recorded dataset versions (`keel data snapshot`), each holding its stored objects.

    A version is recorded once: its id is a content digest, so adding the same content
    again (even from two processes at once) keeps the first record.
    """

    @abstractmethod
    def add(self, version: DatasetVersion) -> DatasetVersion:
        """Record the version and hold its Parquet and profile objects, in one transaction.

        Returns the recorded version: `version` itself, or the earlier record of the same
        id. Both objects must already be recorded as artifacts (`NotFound` otherwise), so
        a version never points at bytes gc may take; an object put for a version whose
        `add` never happened stays unheld, and gc reclaims it.
        """

    @abstractmethod
    def get(self, id: Digest) -> DatasetVersion:
        """The version; `NotFound` if it was never recorded."""

    @abstractmethod
    def find(self, id: Digest) -> DatasetVersion | None:
        """The version, or None if it was never recorded."""

    @abstractmethod
    def resolve(self, ref: str) -> DatasetVersion:
        """The version a user named: `latest`, a full id, or a unique prefix of >= 6 hex.

        `NotFound` if nothing matches, `Conflict` (listing the candidates) if a prefix
        names several versions, `ConfigError` if `ref` cannot name a version at all.
        """

    @abstractmethod
    def list(self, *, limit: int | None = None) -> builtins.list[DatasetVersion]:
        """Versions, newest first."""

    @abstractmethod
    def count(self) -> int:
        """How many versions are recorded."""


class Runs(ABC):
    """Training runs, what they logged, their steps, and the step cache.

    A run is written by one process (the one that started it) while it is `running`;
    once finished, `completed` or `failed`, it is read-only: logging to it is a
    `Conflict`. Params are immutable: the same key with another value is a `Conflict`
    naming both values. An unknown run id is `NotFound` everywhere.
    """

    @abstractmethod
    def start(
        self,
        run: Run,
        *,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        """Record a new `running` run with its first params and tags, in one transaction."""

    @abstractmethod
    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, str] | None = None,
        metrics: Sequence[Metric] = (),
        tags: Mapping[str, str] | None = None,
        heartbeat: datetime | None = None,
    ) -> None:
        """Record params, metric points and tags in one transaction (and the heartbeat)."""

    @abstractmethod
    def finish(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: str | None = None,
        ended_at: datetime | None = None,
        params: Mapping[str, str] | None = None,
        metrics: Sequence[Metric] = (),
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        """End a running run, writing its last logs in the same transaction."""

    @abstractmethod
    def heartbeat(self, run_id: str, at: datetime | None = None) -> None:
        """Note that the run's process is alive; `Conflict` if the run has finished."""

    @abstractmethod
    def get(self, run_id: str) -> Run:
        """The run; `NotFound` if there is none with that id."""

    @abstractmethod
    def resolve(self, ref: str) -> Run:
        """The run a user named: a full id or a unique prefix of at least 6 hex characters.

        `NotFound` if nothing matches, `Conflict` (listing candidates) if several do.
        """

    @abstractmethod
    def list(
        self, *, limit: int | None = None, status: RunStatus | None = None
    ) -> builtins.list[Run]:
        """Runs, newest first, optionally only those with `status`."""

    @abstractmethod
    def metrics(self, run_id: str, key: str | None = None) -> builtins.list[Metric]:
        """Metric points by key, then step, then time; only `key`'s series if given."""

    @abstractmethod
    def metric_summaries(self, run_id: str) -> builtins.list[MetricSummary]:
        """Each metric's last value and series length, by key."""

    @abstractmethod
    def params(self, run_id: str) -> dict[str, str]:
        """The run's params, by key."""

    @abstractmethod
    def tags(self, run_id: str) -> dict[str, str]:
        """The run's tags, by key."""

    @abstractmethod
    def add_artifact(self, run_id: str, artifact: RunArtifact) -> None:
        """Name a recorded object as the run's artifact and hold it against gc.

        `NotFound` if the object is not recorded; the same name for another object is a
        `Conflict`; the same name and object again changes nothing.
        """

    @abstractmethod
    def artifacts(self, run_id: str) -> builtins.list[RunArtifact]:
        """The run's artifacts, by name."""

    @abstractmethod
    def record_step(self, record: StepRecord) -> None:
        """Record what a step did in a run. A step that ran with an output also becomes
        the step cache's entry for its cache key (replacing an older one), holding the
        output against gc, unless `record.cache` is false."""

    @abstractmethod
    def steps(self, run_id: str) -> builtins.list[StepRecord]:
        """The run's steps, in the order they were recorded."""

    @abstractmethod
    def find_cached_step(self, cache_key: str) -> CachedStep | None:
        """The cached output for a step cache key, or None."""

    @abstractmethod
    def reap_dead(
        self,
        now: datetime,
        host: str,
        is_alive: Callable[[int], bool],
        *,
        timeout: timedelta = timedelta(minutes=10),
    ) -> builtins.list[Run]:
        """Mark as failed the running runs whose process is gone; returns them.

        Gone means: on `host` (this machine) with a pid that `is_alive` says is not
        running, or anywhere with no heartbeat for longer than `timeout`.
        """

    @abstractmethod
    def count(self) -> int:
        """How many runs are recorded."""


class ModelRegistry(ABC):
    """Registered models: numbered versions of run outputs, and aliases on them.

    Versions of a model are numbered 1, 2, ... in registration order, without gaps, even
    when several processes register at once. A version is immutable; it holds its package
    object against gc (holder `model:<name>/<version>`). Aliases are movable names on
    versions; registration may set one (`candidate` by default) in the same transaction.
    Moving other aliases is the release workflow's job (gates, approvals, audit log), not
    this port's. Unknown models, versions and aliases are `NotFound`, naming what exists.
    """

    @abstractmethod
    def register(
        self,
        model: str,
        *,
        run_id: str,
        package: Digest,
        flavor: str,
        inference_contract: Mapping[str, object],
        metrics: Mapping[str, float],
        actor: str,
        alias: str | None = CANDIDATE,
        sign: Callable[[ModelVersion], Mapping[str, str]] | None = None,
        announce: bool = True,
    ) -> ModelVersion:
        """Record the next version of `model` (creating the model on first use).

        In one transaction: allocate the version number, hold `package`, and point `alias`
        (unless None) at the new version. `sign`, given the new version, returns the signature
        stored with it (`keel.models.signing.sign_version`). `ConfigError` for an invalid
        name, alias, metric or contract; `NotFound` if the run or the package object is not
        recorded; `Conflict` if the run failed.

        With `announce=False` (and no alias) the version is recorded without its
        `model.registered` event: `complete_registration` writes it, once the run completed
        with the reference profile recorded (what `keel train` does, so that a process killed
        in between leaves no version an alias points at).
        """

    @abstractmethod
    def complete_registration(
        self, model: str, version: int, *, alias: str | None, actor: str
    ) -> AuditEvent:
        """In one transaction: check that the version's run completed and its reference
        profile is recorded (`Conflict` naming what is missing otherwise), append its
        `model.registered` event and point `alias` at it. `Conflict` if it was announced."""

    @abstractmethod
    def record_signature(
        self, model: str, version: int, signature: Mapping[str, str], *, actor: str
    ) -> ModelVersion:
        """Store `signature` as the version's (replacing any), with a `model.signed` audit
        event; `NotFound` if the version does not exist."""

    @abstractmethod
    def get(self, model: str, version: int) -> ModelVersion:
        """One version; `NotFound` if the model or the version does not exist."""

    @abstractmethod
    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference names: `name@3`, `name@alias`, `name@latest` or `name`
        (its newest version). `ConfigError` for a malformed reference, `NotFound` (naming
        the versions or aliases that do exist) for one that names nothing."""

    @abstractmethod
    def list_models(self) -> builtins.list[RegisteredModel]:
        """Every model with its newest version and aliases, by name."""

    @abstractmethod
    def versions(
        self, model: str, *, before: int | None = None, limit: int | None = None
    ) -> builtins.list[ModelVersion]:
        """The model's versions, newest first; `NotFound` for an unknown model. A page of
        them with `before` (only versions below it) and `limit`."""

    @abstractmethod
    def aliases(self, model: str) -> builtins.list[Alias]:
        """The model's aliases, by name; `NotFound` for an unknown model."""


class AuditLog(ABC):
    """The append-only, hash-chained log of every release-relevant event.

    Events are appended by the aggregates that change state, inside the same transaction
    as the change (never through this port), so a change and its event commit together.
    """

    @abstractmethod
    def events(
        self,
        *,
        model: str | None = None,
        kinds: builtins.list[str] | None = None,
        after: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> builtins.list[AuditEvent]:
        """Events with seq > `after`, optionally of one model or some kinds."""

    @abstractmethod
    def head(self) -> tuple[int, str]:
        """The newest event's seq and hash."""

    @abstractmethod
    def record(
        self,
        *,
        actor: str,
        kind: str,
        model: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        subject: str | None = None,
        reason: str | None = None,
        evidence: Mapping[str, object] | None = None,
    ) -> AuditEvent:
        """Append an event that records no other change (an alert, a server's load failure)."""

    @abstractmethod
    def verify(self) -> ChainReport:
        """Recompute the chain and compare it with the stored head."""

    @abstractmethod
    def on_commit(self, listener: Callable[[int, str], None] | None) -> None:
        """Call `listener(seq, hash)` for each event a write transaction appended, once it
        has committed (signed checkpoints follow the head); it must not raise. None stops."""


class Releases(ABC):
    """Alias moves, gate evaluations, release requests and their approvals.

    Every write appends its audit event in the same transaction and takes the model-row
    lock registration takes, so moves of one model's aliases are serialised. Moves are
    compare-and-set on the holder the caller decided against: if the alias moved in
    between, `Conflict` and nothing changes.
    """

    @abstractmethod
    def holder(self, model: str, alias: str) -> int | None:
        """The version holding `alias`, or None."""

    @abstractmethod
    def history(self, model: str, alias: str) -> builtins.list[AliasMove]:
        """Every move, rollback and removal of the alias, oldest first."""

    @abstractmethod
    def record_evaluation(
        self,
        model: str,
        version: int,
        alias: str,
        *,
        holder: int | None,
        results: Sequence[GateResult],
        actor: str,
        extra: Mapping[str, object] | None = None,
    ) -> str:
        """Store gate results (event `gates.evaluated`); returns the evaluation id."""

    @abstractmethod
    def evaluation(self, evaluation_id: str) -> builtins.list[GateResult]:
        """The stored gate results of one evaluation."""

    @abstractmethod
    def move_alias(
        self,
        model: str,
        alias: str,
        version: int,
        *,
        expected_holder: int | None,
        actor: str,
        reason: str | None,
        evidence: Mapping[str, object] | None = None,
    ) -> AuditEvent:
        """Point `alias` at `version` if it still points at `expected_holder`."""

    @abstractmethod
    def rollback(self, model: str, alias: str, *, actor: str, reason: str) -> AuditEvent:
        """Move `alias` back to its previous holder (event `alias.rolled_back`)."""

    @abstractmethod
    def remove_alias(
        self,
        model: str,
        alias: str,
        *,
        expected_holder: int,
        actor: str,
        reason: str,
        evidence: Mapping[str, object] | None = None,
    ) -> AuditEvent:
        """Remove `alias` if it still points at `expected_holder` (event `alias.removed`;
        `Conflict` and nothing changes otherwise). Removing `production` stops serving the
        model; removing `canary` sends all its traffic to production."""

    @abstractmethod
    def promote_canary(
        self,
        model: str,
        version: int,
        *,
        expected_production: int | None,
        actor: str,
        reason: str,
        evidence: Mapping[str, object],
        evaluation: str | None = None,
    ) -> builtins.list[AuditEvent]:
        """In one transaction: `canary.promoted` with the evidence, `production` moved to
        `version` (compare-and-set on `expected_production`), and `canary`, which must still
        hold `version`, removed. Returns the three events."""

    @abstractmethod
    def roll_back_canary(
        self,
        model: str,
        version: int,
        *,
        actor: str,
        reason: str,
        evidence: Mapping[str, object],
    ) -> builtins.list[AuditEvent]:
        """In one transaction: `canary.rolled_back` with the evidence, and `canary`, which
        must still hold `version`, removed. Returns the two events."""

    @abstractmethod
    def open_request(
        self,
        model: str,
        version: int,
        alias: str,
        *,
        holder: int | None,
        evaluation_id: str,
        actor: str,
        reason: str | None,
        ttl: timedelta,
        required: int,
        roles: Sequence[str],
        evidence: Mapping[str, object] | None = None,
    ) -> ReleaseRequest:
        """Record a pending release request (event `release.requested`, with `evidence`
        added to what the store records: e.g. the release owner it notifies)."""

    @abstractmethod
    def request(self, request_id: str) -> ReleaseRequest:
        """One request by id or unique id prefix; `NotFound` otherwise."""

    @abstractmethod
    def requests(
        self,
        *,
        status: str | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[ReleaseRequest]:
        """Requests, newest first."""

    @abstractmethod
    def decide(
        self,
        request_id: str,
        *,
        actor: Actor,
        decision: Decision,
        comment: str | None,
        expected_holder: int | None,
        evaluation_id: str | None = None,
        now: datetime | None = None,
    ) -> tuple[ReleaseRequest, AuditEvent | None]:
        """Record an approval or rejection; the approval that completes the count moves
        the alias (compare-and-set on `expected_holder`) in the same transaction. Returns
        the request as it now is and the alias move, if one happened."""

    @abstractmethod
    def close_request(
        self,
        request_id: str,
        *,
        status: str,
        actor: str,
        outcome: str,
        evidence: Mapping[str, object] | None = None,
    ) -> ReleaseRequest:
        """Close a pending request as expired, superseded or refused, with its event."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """A subscriber that receives audit events by HTTP POST, signed with HMAC-SHA256."""

    id: str
    url: str
    events: tuple[str, ...]  # event kinds, or ("*",)
    created_at: datetime
    created_by: str
    cursor: int  # newest event seq delivered
    failures: int
    last_error: str | None
    disabled_at: datetime | None = None

    def wants(self, kind: str) -> bool:
        return "*" in self.events or kind in self.events


class Identities(ABC):
    """Users with roles, and the API tokens that act as them (stored hashed)."""

    @abstractmethod
    def add_user(self, name: str, roles: Sequence[Role], *, actor: str) -> None:
        """Create a user, or set the roles of an existing one (events `user.*`)."""

    @abstractmethod
    def disable_user(self, name: str, *, actor: str) -> None:
        """Disable a user: its tokens stop working."""

    @abstractmethod
    def roles(self, name: str) -> frozenset[str]:
        """The roles of an enabled user; empty for an unknown or disabled one."""

    @abstractmethod
    def users(self) -> builtins.list[dict[str, object]]:
        """Every user with roles, creation and state."""

    @abstractmethod
    def create_token(
        self, user: str, *, actor: str, label: str | None = None, ttl: timedelta | None = None
    ) -> str:
        """A new token for `user`, returned once in full; only its hash is stored."""

    @abstractmethod
    def revoke_token(self, token_id: str, *, actor: str) -> None:
        """Revoke a token by its id."""

    @abstractmethod
    def tokens(self, user: str | None = None) -> builtins.list[dict[str, object]]:
        """Tokens (never their secrets), optionally of one user."""

    @abstractmethod
    def authenticate(self, token: str) -> Actor:
        """The actor a presented token stands for; `PermissionDenied` for a malformed,
        unknown, revoked or expired token or a disabled user."""


class Webhooks(ABC):
    """Webhook subscriptions and their delivery cursors."""

    @abstractmethod
    def add(
        self, url: str, *, events: Sequence[str], actor: str, secret: str | None = None
    ) -> tuple[Webhook, str]:
        """Subscribe `url`; returns the webhook and its signing secret (shown once)."""

    @abstractmethod
    def remove(self, webhook_id: str, *, actor: str) -> None: ...

    @abstractmethod
    def list(self) -> builtins.list[Webhook]: ...

    @abstractmethod
    def secret(self, webhook_id: str) -> str: ...

    @abstractmethod
    def delivered(self, webhook_id: str, cursor: int) -> None:
        """Record that every event up to `cursor` reached the subscriber."""

    @abstractmethod
    def failed(self, webhook_id: str, error: str) -> None:
        """Record a failed delivery attempt (the cursor stays, so it is retried)."""


class Predictions(ABC):
    """The prediction log: recent rows, and the index of compacted Parquet segments.

    Rows are immutable. The log's writer adds them in batches, one transaction each
    (durable at commit); an id already logged is skipped, so a retried batch never
    duplicates. Compaction stores a segment object first, then `add_segment` indexes it
    and deletes exactly the rows it holds in one transaction: a crash in between leaves
    the rows in place and an unheld object for gc, never a loss or a duplicate.
    """

    @abstractmethod
    def add(self, rows: Sequence[LoggedPrediction]) -> None:
        """Write rows in one transaction."""

    @abstractmethod
    def get(self, prediction_id: str) -> LoggedPrediction | None:
        """A row still in the metadata store, or None (it may be in a segment)."""

    @abstractmethod
    def window(
        self,
        model: str,
        start: datetime,
        end: datetime,
        *,
        version: int | None = None,
        slot: str | None = None,
    ) -> builtins.list[LoggedPrediction]:
        """Rows still in the metadata store with `start <= at < end`, by time then id."""

    @abstractmethod
    def closed(self, before: datetime) -> builtins.list[tuple[str, int, int]]:
        """(model, version, rows) for every model version with rows older than `before`."""

    @abstractmethod
    def oldest(
        self, model: str, version: int, before: datetime, *, limit: int
    ) -> builtins.list[LoggedPrediction]:
        """Up to `limit` rows of a model version older than `before`, by id."""

    @abstractmethod
    def add_segment(self, segment: PredictionSegment, *, before: datetime, actor: str) -> None:
        """Index a stored segment, hold its object, and delete the rows it holds (those of
        its model version older than `before` within its id range), in one transaction.

        `NotFound` if the object is not recorded; `Conflict` (and nothing changes) if the
        rows to delete are not exactly the segment's count: rows arrived or went meanwhile.
        """

    @abstractmethod
    def segments(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> builtins.list[PredictionSegment]:
        """Segments with rows in `[start, end)`, oldest first."""

    @abstractmethod
    def segments_holding(self, prediction_id: str) -> builtins.list[PredictionSegment]:
        """Segments whose id range covers `prediction_id` (at most one holds it)."""

    @abstractmethod
    def stats(self) -> builtins.list[PredictionLogStats]:
        """Rows and segments per model version, by model then version."""


class Monitoring(ABC):
    """What monitoring keeps: each version's reference profile, the signals of every window
    monitored, and the alerts they raised.

    Alerts are deduplicated by (model, rule, subject): while one is open, raising the same
    again updates it (last seen, value, evidence) instead of adding another; resolving closes
    it, and a later breach opens a new one. Opening and resolving are audit events, written
    in the same transaction, so webhooks and the audit log see every alert.
    """

    @abstractmethod
    def put_reference(
        self, model: str, version: int, profile: Digest, *, row_count: int, source: str
    ) -> ReferenceProfile:
        """Record a version's reference profile; the first one recorded is kept."""

    @abstractmethod
    def reference(self, model: str, version: int) -> ReferenceProfile | None: ...

    @abstractmethod
    def record_metrics(self, metrics: Sequence[MonitorMetric]) -> None:
        """Store window signals in one transaction; a window monitored again is replaced."""

    @abstractmethod
    def metrics(
        self,
        model: str,
        *,
        signal: str | None = None,
        subject: str | None = None,
        version: int | None = None,
        since: datetime | None = None,
    ) -> builtins.list[MonitorMetric]:
        """Stored signals, oldest window first."""

    @abstractmethod
    def window_ends(self, model: str, *, limit: int) -> builtins.list[datetime]:
        """The ends of the model's newest `limit` monitored windows, newest first (windows
        of no length, where freshness is recorded, excluded)."""

    @abstractmethod
    def latest_metrics(
        self, model: str | None = None, *, signals: Sequence[str] | None = None
    ) -> builtins.list[MonitorMetric]:
        """The newest window's value of every (model, version, signal, subject); only those
        of `signals` if given (cheaper: the rest of the history is not read)."""

    @abstractmethod
    def raise_alert(self, draft: AlertDraft, *, at: datetime, actor: str) -> tuple[Alert, bool]:
        """Open an alert, or update the open one with the same key; True when opened."""

    @abstractmethod
    def resolve_alert(self, alert_id: str, *, at: datetime, actor: str, reason: str) -> Alert:
        """Close an open alert (`NotFound` if unknown; resolving a resolved one is a no-op)."""

    @abstractmethod
    def alerts(
        self,
        *,
        model: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Alert]:
        """Alerts, newest first."""

    @abstractmethod
    def alert(self, alert_id: str) -> Alert: ...


#: A label: a JSON scalar, never null (numbers finite).
Label = bool | int | float | str


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    """One label for one logged prediction. `at` is the prediction's time, as logged, so
    that windows of predictions and of labels are cut alike."""

    prediction_id: str
    model: str
    at: datetime
    label: Label


@dataclass(frozen=True, slots=True)
class FeedbackReceipt:
    """What one `Feedback.record` stored: `new` labels and `replaced` ones (of which
    `changed` differ from the label they replaced)."""

    rows: int
    new: int
    replaced: int
    changed: int
    received_at: datetime
    received_by: str
    events: tuple[int, ...] = ()  # the audit events recording the batch, one per model

    def to_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "new": self.new,
            "replaced": self.replaced,
            "changed": self.changed,
            "received_at": self.received_at.isoformat(),
            "received_by": self.received_by,
            "audit_events": list(self.events),
        }


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """One label a prediction has had: who recorded it and when, and, unless it is the
    current one, who replaced it and when. `revision` counts from 1, the first label."""

    prediction_id: str
    revision: int
    model: str
    label: Label
    received_at: datetime
    received_by: str
    superseded_at: datetime | None = None
    superseded_by: str | None = None

    @property
    def current(self) -> bool:
        return self.superseded_at is None

    def to_dict(self) -> dict[str, object]:
        return {
            "revision": self.revision,
            "label": self.label,
            "current": self.current,
            "received_at": self.received_at.isoformat(),
            "received_by": self.received_by,
            "superseded_at": None if self.superseded_at is None else self.superseded_at.isoformat(),
            "superseded_by": self.superseded_by,
        }


class Labelled(NamedTuple):
    """A stored label with its prediction's id and time."""

    prediction_id: str
    at: datetime
    label: Label


class LoggedKey(NamedTuple):
    """Which model version made a logged prediction, and when."""

    model: str
    version: int
    at: datetime


class Feedback(ABC):
    """Delayed ground truth: one current label per logged prediction.

    A later label for the same prediction becomes the current one; a replaced label that
    differs is kept in the prediction's history. Labels decide measured performance, so
    recording them is a write like any other: every batch appends a `labels.recorded`
    audit event per model, in the same transaction. `record` is all or nothing, and
    writers of feedback take turns, so the counts of new and replaced labels it returns
    are exact even when several write at once.
    """

    @abstractmethod
    def record(
        self, rows: Sequence[FeedbackRow], *, actor: str, via: str | None = None
    ) -> FeedbackReceipt:
        """Store the labels, their history and their audit events in one transaction.
        `via` says where they came from (a route, a file), for the audit log. `ConfigError`
        (nothing stored) for a prediction id given twice or a label that is null, not
        finite or not a scalar."""

    @abstractmethod
    def history(self, prediction_id: str) -> builtins.list[LabelRecord]:
        """Every label the prediction has had, oldest first, the current one last; empty
        when it has none."""

    @abstractmethod
    def window(self, model: str, start: datetime, end: datetime) -> builtins.list[Labelled]:
        """Labels of the model's predictions made in `[start, end)`, by time then id."""

    @abstractmethod
    def count(
        self, model: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> int:
        """How many of the model's predictions (made in `[start, end)`, if given) have a label."""

    @abstractmethod
    def newest(self, model: str) -> datetime | None:
        """When the model's most recent label arrived; None before the first."""

    @abstractmethod
    def span(self, model: str) -> tuple[datetime, datetime] | None:
        """The times of the oldest and newest labelled predictions of the model."""

    @abstractmethod
    def labels(self, prediction_ids: Iterable[str]) -> dict[str, Label]:
        """The stored label of each of these predictions that has one."""

    @abstractmethod
    def logged(self, prediction_ids: Iterable[str]) -> dict[str, LoggedKey]:
        """Model, version and time of each of these ids among the prediction log's recent
        rows (compacted ones are in its segments): what resolving labels by id needs."""


class MetadataStore(ABC):
    """Project metadata: SQLAlchemy Core over SQLite or PostgreSQL."""

    url: str  # without password
    backend: str  # "sqlite" or "postgresql"
    artifacts: ArtifactRecords
    datasets: DatasetVersions
    runs: Runs
    models: ModelRegistry
    audit: AuditLog
    releases: Releases
    identities: Identities
    webhooks: Webhooks
    predictions: Predictions
    feedback: Feedback
    monitoring: Monitoring

    @abstractmethod
    def revision(self) -> SchemaRevision: ...

    @abstractmethod
    def upgrade(self) -> SchemaRevision:
        """Apply pending migrations (serialised across processes); returns the new revision."""

    @abstractmethod
    def health(self) -> StoreHealth: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
