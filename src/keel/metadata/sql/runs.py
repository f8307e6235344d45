"""Training runs in SQL (the `runs` aggregate): runs, their logs, steps and the step cache,
in one module of about 620 lines on purpose: `SqlRuns` implements the one `Runs` port, and
every write shares the helpers below: the claim that locks a running run's row (so nothing
is logged to a finished run) and the statements prebuilt once per dialect (building one per
call costs more than the write on SQLite).
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from keel.domain.digest import Digest
from keel.domain.duration import format_duration
from keel.domain.run import (
    RUN_ID_MIN_PREFIX,
    CachedStep,
    Metric,
    MetricSummary,
    Run,
    RunArtifact,
    RunStatus,
    StepRecord,
    is_run_id,
)
from keel.errors import ConfigError, Conflict, NotFound
from keel.metadata.base import Runs
from keel.metadata.sql.engine import read_transaction, write_transaction
from keel.metadata.sql.schema import (
    artifact_holders,
    artifacts,
    datasets,
    run_artifacts,
    run_metrics,
    run_params,
    run_steps,
    run_tags,
    runs,
    step_cache,
)

__all__ = ["SqlRuns"]

#: Keys per `IN (...)` when checking params, well under both backends' parameter limits.
_KEY_BATCH: Final = 500
_CANDIDATES_SHOWN: Final = 10
_HINT_LIST: Final = "`keel runs list` shows the recorded runs"


class SqlRuns(Runs):
    """`Runs` on SQLite or PostgreSQL.

    Every write to a run first claims its row with a conditional `UPDATE ... WHERE
    status = 'running'` (or `SELECT ... FOR UPDATE`), which serialises writers of one run
    on PostgreSQL (SQLite serialises all writers anyway): a batch committed after the run
    finished cannot slip in, and the param immutability check cannot race with another
    writer of the same key. Logs go in with one multi-row insert per table.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- lifecycle ------------------------------------------------------------------------

    def start(
        self,
        run: Run,
        *,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        """Record a new `running` run with its first params and tags, in one transaction."""
        if run.status != "running":
            raise ValueError(f"a run starts as 'running', not {run.status!r}")
        with write_transaction(self._engine) as conn:
            if run.dataset is not None and not _lock_key(conn, datasets, str(run.dataset)):
                raise NotFound(
                    f"cannot start run {run.id}: dataset version {run.dataset} is not recorded",
                    hint="`keel data list` shows the recorded dataset versions",
                )
            try:
                conn.execute(_INSERT_RUN, _row_of(run))
            except sa_exc.IntegrityError as exc:
                raise Conflict(f"a run with id {run.id} is already recorded") from exc
            if params:
                conn.execute(
                    _INSERT_PARAMS,
                    [{"run_id": run.id, "key": k, "value": v} for k, v in params.items()],
                )
            _write_tags(conn, run.id, tags)
        return run

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
        with write_transaction(self._engine) as conn:
            _claim(conn, run_id, "log to", {} if heartbeat is None else {"heartbeat_at": heartbeat})
            _write_logs(conn, run_id, params, metrics, tags)

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
        if status == "running":
            raise ValueError("a run finishes as 'completed' or 'failed', not 'running'")
        ended = ended_at or datetime.now(UTC)
        values = {"status": status, "ended_at": ended, "heartbeat_at": ended, "error": error}
        with write_transaction(self._engine) as conn:
            row = _claim(conn, run_id, "finish", values)
            _write_logs(conn, run_id, params, metrics, tags)
        return _to_run(row)

    def heartbeat(self, run_id: str, at: datetime | None = None) -> None:
        """Note that the run's process is alive; `Conflict` if the run has finished."""
        with write_transaction(self._engine) as conn:
            _claim(conn, run_id, "heartbeat", {"heartbeat_at": at or datetime.now(UTC)})

    def reap_dead(
        self,
        now: datetime,
        host: str,
        is_alive: Callable[[int], bool],
        *,
        timeout: timedelta = timedelta(minutes=10),
    ) -> builtins.list[Run]:
        """Mark as failed the running runs whose process is gone; returns them.

        Reads first, so the common case (nothing to reap) takes no write lock. Each update
        repeats its condition, so a run that finished or sent a heartbeat in between is
        left alone.
        """
        query = select(runs.c.id, runs.c.host, runs.c.pid, runs.c.heartbeat_at, runs.c.started_at)
        with read_transaction(self._engine) as conn:
            running = conn.execute(query.where(runs.c.status == "running")).all()
        cutoff = now - timeout
        doomed: builtins.list[tuple[str, str, Any]] = []
        for row in running:
            if row.host == host and not is_alive(row.pid):
                reason = f"process {row.pid} on {row.host} exited without finishing the run"
                doomed.append((row.id, reason, runs.c.status == "running"))
                continue
            last = row.heartbeat_at or row.started_at
            if last < cutoff:
                reason = (
                    f"process {row.pid} on {row.host} sent no heartbeat for over "
                    f"{format_duration(timeout)} (last at {last:%Y-%m-%d %H:%M:%S} UTC); "
                    "presumed dead"
                )
                still_silent = func.coalesce(runs.c.heartbeat_at, runs.c.started_at) < cutoff
                doomed.append((row.id, reason, still_silent))
        reaped: builtins.list[Run] = []
        if not doomed:
            return reaped
        with write_transaction(self._engine) as conn:
            for run_id, reason, condition in doomed:
                failed = conn.execute(
                    update(runs)
                    .where(runs.c.id == run_id, runs.c.status == "running", condition)
                    .values(status="failed", ended_at=now, error=reason)
                    .returning(*runs.c)
                ).first()
                if failed is not None:
                    reaped.append(_to_run(failed))
        return reaped

    # --- reading --------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        """The run; `NotFound` if there is none with that id."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"no run {run_id} is recorded", hint=_HINT_LIST)
        return _to_run(row)

    def resolve(self, ref: str) -> Run:
        """The run named by a full id or a unique prefix of at least 6 hex characters."""
        text = ref.strip().lower()
        if is_run_id(text):
            return self.get(text)
        if len(text) < RUN_ID_MIN_PREFIX or len(text) > 32 or text.strip("0123456789abcdef"):
            raise ConfigError(
                f"{ref!r} is not a run id: expected 32 hex characters, or at least "
                f"{RUN_ID_MIN_PREFIX} leading ones",
                problems=[("RUN_ID", "must be hex, at least 6 characters")],
                hint=_HINT_LIST,
            )
        # Validated hex: no LIKE wildcard can slip into the prefix.
        query = (
            select(runs)
            .where(runs.c.id.startswith(text))
            .order_by(runs.c.started_at.desc(), runs.c.id.desc())
            .limit(_CANDIDATES_SHOWN + 1)
        )
        with read_transaction(self._engine) as conn:
            candidates = [_to_run(row) for row in conn.execute(query)]
        if not candidates:
            raise NotFound(f"no run id starts with {text}", hint=_HINT_LIST)
        if len(candidates) > 1:
            shown = ", ".join(c.id for c in candidates[:_CANDIDATES_SHOWN])
            more = " and more" if len(candidates) > _CANDIDATES_SHOWN else ""
            raise Conflict(
                f"{text} names several runs: {shown}{more}", hint="give more characters of the id"
            )
        return candidates[0]

    def list(
        self, *, limit: int | None = None, status: RunStatus | None = None
    ) -> builtins.list[Run]:
        """Runs, newest first, optionally only those with `status`."""
        query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc())
        if status is not None:
            query = query.where(runs.c.status == status)
        if limit is not None:
            query = query.limit(limit)
        with read_transaction(self._engine) as conn:
            return [_to_run(row) for row in conn.execute(query)]

    def count(self) -> int:
        """How many runs are recorded."""
        with read_transaction(self._engine) as conn:
            return conn.execute(select(func.count()).select_from(runs)).scalar_one()

    def metrics(self, run_id: str, key: str | None = None) -> builtins.list[Metric]:
        """Metric points by key, then step, then time; only `key`'s series if given."""
        m = run_metrics.c
        query = select(m.key, m.value, m.step, m.timestamp).where(m.run_id == run_id)
        if key is not None:
            query = query.where(m.key == key)
        with read_transaction(self._engine) as conn:
            _check_exists(conn, run_id)
            rows = conn.execute(query.order_by(m.key, m.step, m.timestamp))
            return [Metric(r.key, r.value, r.step, r.timestamp) for r in rows]

    def metric_summaries(self, run_id: str) -> builtins.list[MetricSummary]:
        """Each metric's last value (highest step, then latest) and series length, by key."""
        m = run_metrics.c
        last = (
            select(m.key, func.max(m.step).label("step"), func.count().label("n"))
            .where(m.run_id == run_id)
            .group_by(m.key)
            .subquery()
        )
        query = (
            select(m.key, m.value, m.step, last.c.n)
            .join(last, (m.key == last.c.key) & (m.step == last.c.step))
            .where(m.run_id == run_id)
            .order_by(m.key, m.timestamp)
        )
        with read_transaction(self._engine) as conn:
            _check_exists(conn, run_id)
            # Several points may share the last step; the latest (last in order) wins.
            summaries = {
                r.key: MetricSummary(r.key, r.value, r.step, r.n) for r in conn.execute(query)
            }
        return builtins.list(summaries.values())

    def params(self, run_id: str) -> dict[str, str]:
        """The run's params, by key."""
        return self._pairs(run_params, run_id)

    def tags(self, run_id: str) -> dict[str, str]:
        """The run's tags, by key."""
        return self._pairs(run_tags, run_id)

    def _pairs(self, table: Table, run_id: str) -> dict[str, str]:
        query = select(table.c.key, table.c.value).where(table.c.run_id == run_id)
        with read_transaction(self._engine) as conn:
            _check_exists(conn, run_id)
            return {r.key: r.value for r in conn.execute(query.order_by(table.c.key))}

    # --- artifacts and steps --------------------------------------------------------------

    def add_artifact(self, run_id: str, artifact: RunArtifact) -> None:
        """Name a recorded object as the run's artifact and hold it against gc."""
        holder = f"run:{run_id}/artifact/{artifact.name}"
        with write_transaction(self._engine) as conn:
            _claim(conn, run_id, "add an artifact to", {})
            _hold(conn, artifact.digest, holder, what=f"artifact {artifact.name!r}")
            existing = conn.execute(
                select(run_artifacts.c.digest).where(
                    run_artifacts.c.run_id == run_id, run_artifacts.c.name == artifact.name
                )
            ).scalar()
            if existing is None:
                conn.execute(
                    insert(run_artifacts).values(
                        run_id=run_id,
                        name=artifact.name,
                        digest=str(artifact.digest),
                        size=artifact.size,
                    )
                )
            elif existing != str(artifact.digest):
                raise Conflict(
                    f"run {run_id} already has an artifact {artifact.name!r} "
                    f"({existing}); it cannot become {artifact.digest}",
                    hint="log the new object under another name",
                )

    def artifacts(self, run_id: str) -> builtins.list[RunArtifact]:
        """The run's artifacts, by name."""
        a = run_artifacts.c
        query = select(a.name, a.digest, a.size).where(a.run_id == run_id).order_by(a.name)
        with read_transaction(self._engine) as conn:
            _check_exists(conn, run_id)
            return [
                RunArtifact(r.name, Digest.parse(r.digest), r.size) for r in conn.execute(query)
            ]

    def record_step(self, record: StepRecord) -> None:
        """Record what a step did; a step that ran with an output becomes the cache entry."""
        run_id = record.run_id
        with write_transaction(self._engine) as conn:
            _claim(conn, run_id, "record a step of", {})
            s = run_steps.c
            position = conn.execute(
                select(func.count()).select_from(run_steps).where(s.run_id == run_id)
            ).scalar_one()
            known = conn.execute(
                select(s.step).where(s.run_id == run_id, s.step == record.step)
            ).first()
            if known is not None:
                raise Conflict(f"run {run_id} has already recorded step {record.step!r}")
            output = None if record.output is None else str(record.output)
            if record.output is not None:
                _hold(
                    conn,
                    record.output,
                    f"run:{run_id}/step/{record.step}",
                    what=f"step {record.step!r}",
                )
            conn.execute(
                insert(run_steps).values(
                    run_id=run_id,
                    step=record.step,
                    position=position,
                    cache_key=record.cache_key,
                    outcome=record.outcome,
                    output=output,
                    seconds=record.seconds,
                )
            )
            if record.outcome != "ran" or record.output is None or not record.cache:
                return
            holder = f"step-cache:{record.cache_key}"
            entry = {
                "cache_key": record.cache_key,
                "step": record.step,
                "output": output,
                "run_id": run_id,
                "created_at": datetime.now(UTC),
            }
            statement = _dialect_insert(conn, step_cache).values(entry)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["cache_key"],
                    set_={
                        k: statement.excluded[k] for k in ("step", "output", "run_id", "created_at")
                    },
                )
            )
            # Whatever output held this key before (ours, or a concurrent writer's that
            # we just replaced) is no longer the cache's to keep.
            conn.execute(
                delete(artifact_holders).where(
                    artifact_holders.c.holder == holder, artifact_holders.c.digest != output
                )
            )
            _hold(conn, record.output, holder, what=f"step {record.step!r}")

    def steps(self, run_id: str) -> builtins.list[StepRecord]:
        """The run's steps, in the order they were recorded."""
        s = run_steps.c
        query = select(run_steps).where(s.run_id == run_id).order_by(s.position)
        with read_transaction(self._engine) as conn:
            _check_exists(conn, run_id)
            return [
                StepRecord(
                    run_id=r.run_id,
                    step=r.step,
                    cache_key=r.cache_key,
                    outcome=r.outcome,
                    output=None if r.output is None else Digest.parse(r.output),
                    seconds=r.seconds,
                )
                for r in conn.execute(query)
            ]

    def find_cached_step(self, cache_key: str) -> CachedStep | None:
        """The cached output for a step cache key, or None."""
        query = select(step_cache).where(step_cache.c.cache_key == cache_key)
        with read_transaction(self._engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return CachedStep(
            cache_key=row.cache_key,
            step=row.step,
            output=Digest.parse(row.output),
            run_id=row.run_id,
            created_at=row.created_at,
        )


# --- helpers ------------------------------------------------------------------------------

_INSERT_RUN: Final = insert(runs)
_INSERT_PARAMS: Final = insert(run_params)
_INSERT_METRICS: Final = insert(run_metrics)
_CLAIMED: Final = (runs.c.id == bindparam("claim_id")) & (runs.c.status == "running")
#: Parameters named after columns become the SET clause (Core's executemany style).
_CLAIM_UPDATE: Final = update(runs).where(_CLAIMED).returning(*runs.c)
_CLAIM_LOCK: Final = select(runs).where(_CLAIMED).with_for_update()


@dataclass(frozen=True)
class _DialectStatements:
    add_params: Executable
    set_tags: Executable


@functools.cache
def _statements(dialect: str) -> _DialectStatements:
    new_params = (
        postgresql.insert(run_params) if dialect == "postgresql" else sqlite.insert(run_params)
    )
    tags = postgresql.insert(run_tags) if dialect == "postgresql" else sqlite.insert(run_tags)
    return _DialectStatements(
        add_params=new_params.on_conflict_do_nothing(index_elements=["run_id", "key"]).returning(
            run_params.c.key
        ),
        set_tags=tags.on_conflict_do_update(
            index_elements=["run_id", "key"], set_={"value": tags.excluded.value}
        ),
    )


def _claim(conn: Connection, run_id: str, action: str, values: Mapping[str, Any]) -> Row[Any]:
    """Lock a running run's row (writing `values` to it) and return it as it now is.

    `NotFound` if there is no such run, `Conflict` if it has finished.
    """
    # Prebuilt statements with values bound at execution: building a statement per call
    # costs more than the write itself on SQLite.
    if values:
        claimed = conn.execute(_CLAIM_UPDATE, {"claim_id": run_id, **values}).first()
    else:
        claimed = conn.execute(_CLAIM_LOCK, {"claim_id": run_id}).first()
    if claimed is not None:
        return claimed
    row = conn.execute(select(runs.c.status, runs.c.error).where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"no run {run_id} is recorded", hint=_HINT_LIST)
    reason = f" ({row.error})" if row.error else ""
    raise Conflict(
        f"cannot {action} run {run_id}: it has finished as {row.status}{reason}",
        hint="start a new run",
    )


def _check_exists(conn: Connection, run_id: str) -> None:
    if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
        raise NotFound(f"no run {run_id} is recorded", hint=_HINT_LIST)


def _write_logs(
    conn: Connection,
    run_id: str,
    params: Mapping[str, str] | None,
    metrics: Sequence[Metric],
    tags: Mapping[str, str] | None,
) -> None:
    if params:
        _write_params(conn, run_id, params)
    if metrics:
        conn.execute(
            _INSERT_METRICS,
            [
                {
                    "run_id": run_id,
                    "key": m.key,
                    "step": m.step,
                    "value": m.value,
                    "timestamp": m.timestamp,
                }
                for m in metrics
            ],
        )
    _write_tags(conn, run_id, tags)


def _write_params(conn: Connection, run_id: str, params: Mapping[str, str]) -> None:
    """Insert new params; the same value again is fine, another value is a `Conflict`."""
    rows = [{"run_id": run_id, "key": k, "value": v} for k, v in params.items()]
    statement = _statements(conn.dialect.name).add_params
    # One round trip in the common case (all keys new); only keys that were already
    # there are read back and compared. A Conflict rolls the whole batch back.
    inserted = set(conn.scalars(statement, rows))
    again = [key for key in params if key not in inserted]
    for start in range(0, len(again), _KEY_BATCH):
        query = select(run_params.c.key, run_params.c.value).where(
            run_params.c.run_id == run_id, run_params.c.key.in_(again[start : start + _KEY_BATCH])
        )
        for key, stored in conn.execute(query):
            if stored != params[key]:
                raise Conflict(
                    f"param {key!r} of run {run_id} is already {stored!r}; "
                    f"it cannot become {params[key]!r} (params are immutable)",
                    hint="log the new value under another key, or start a new run",
                )


def _write_tags(conn: Connection, run_id: str, tags: Mapping[str, str] | None) -> None:
    if not tags:
        return
    conn.execute(
        _statements(conn.dialect.name).set_tags,
        [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()],
    )


def _hold(conn: Connection, digest: Digest, holder: str, *, what: str) -> None:
    """Hold a recorded object for the run; `NotFound` if the object is not recorded."""
    if not _lock_key(conn, artifacts, str(digest)):
        raise NotFound(
            f"cannot record {what}: its object {digest} is not recorded as an artifact",
            hint="store and record the object before naming it",
        )
    values = {"digest": str(digest), "holder": holder, "created_at": datetime.now(UTC)}
    conn.execute(
        _dialect_insert(conn, artifact_holders)
        .values(values)
        .on_conflict_do_nothing(index_elements=["digest", "holder"])
    )


def _lock_key(conn: Connection, table: Table, key: str) -> bool:
    # FOR KEY SHARE keeps the row from being deleted until we commit, without blocking
    # others; SQLite ignores the clause (its writers are serialised).
    (column,) = table.primary_key.columns
    query = select(column).where(column == key).with_for_update(read=True, key_share=True)
    return conn.execute(query).first() is not None


def _dialect_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _row_of(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "heartbeat_at": run.heartbeat_at,
        "created_by": run.user,
        "host": run.host,
        "pid": run.pid,
        "dataset_id": None if run.dataset is None else str(run.dataset),
        "git_commit": run.git_commit,
        "git_dirty": run.git_dirty,
        "git_diff_hash": run.git_diff_hash,
        "feature_code_hash": run.feature_code_hash,
        "training_code_hash": run.training_code_hash,
        "environment": run.environment,
        "seed": run.seed,
        "error": run.error,
    }


def _to_run(row: Row[Any]) -> Run:
    return Run(
        id=row.id,
        status=row.status,
        started_at=row.started_at,
        ended_at=row.ended_at,
        heartbeat_at=row.heartbeat_at,
        user=row.created_by,
        host=row.host,
        pid=row.pid,
        dataset=None if row.dataset_id is None else Digest.parse(row.dataset_id),
        git_commit=row.git_commit,
        git_dirty=row.git_dirty,
        git_diff_hash=row.git_diff_hash,
        feature_code_hash=row.feature_code_hash,
        training_code_hash=row.training_code_hash,
        environment=row.environment,
        seed=row.seed,
        error=row.error,
    )
