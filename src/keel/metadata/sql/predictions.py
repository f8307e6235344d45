"""The prediction log in SQL: recent rows (`predictions`) and the index of compacted
segments (`prediction_segments`).

Rows arrive in batches from the log's writer thread, one multi-row INSERT per transaction,
so one commit (one fsync on SQLite with `synchronous=FULL`) makes a whole batch durable.
Inputs and outputs are stored as JSON text: the serving path never waits for typed
columns, and compaction types them once, into Parquet.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, text
from sqlalchemy import exc as sa_exc

from keel.domain.digest import Digest
from keel.domain.prediction import LoggedPrediction, PredictionLogStats, PredictionSegment
from keel.errors import Conflict, NotFound, StoreRefused
from keel.metadata.base import Predictions
from keel.metadata.sql.engine import read_transaction, write_transaction
from keel.metadata.sql.schema import artifact_holders, prediction_segments, predictions
from keel.metadata.sql.statements import insert_ignoring_duplicates, lock_artifact

__all__ = ["SqlPredictions", "segment_holder"]

#: The advisory lock key of compaction (PostgreSQL's locks are named by a 64-bit integer).
_LEASE: Final = int.from_bytes(
    hashlib.blake2b(b"keel:prediction-log-compaction", digest_size=8).digest(), "big", signed=True
)
#: numpy scalars and arrays become JSON numbers and lists; anything else unknown, its text.
_JSON_OPTIONS: Final = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def segment_holder(model: str, version: int) -> str:
    """The artifact holder that keeps a model version's segments from gc."""
    return f"predictions:{model}/{version}"


def _json(document: Any) -> str:
    if not isinstance(document, dict):
        document = dict(document)
    return orjson.dumps(document, option=_JSON_OPTIONS, default=str).decode()


#: The columns `add` writes, in the order of its parameters.
_COLUMNS: Final = (
    "id",
    "at",
    "model",
    "version",
    "slot",
    "client_id",
    "shadow_of",
    "latency_ms",
    "inputs",
    "outputs",
)

#: The columns read into a `LoggedPrediction`, in `_to_logged`'s order.
_ROW: Final = tuple(predictions.c[name] for name in _COLUMNS)

#: `add`'s statement per driver parameter style. ON CONFLICT DO NOTHING: a batch retried
#: after a commit whose answer was lost (a dropped connection) must neither fail on nor
#: duplicate the rows that did commit.
_INSERT: Final = {
    marker: f"INSERT INTO predictions ({', '.join(_COLUMNS)}) "  # noqa: S608 - constants only
    f"VALUES ({', '.join([marker] * len(_COLUMNS))}) ON CONFLICT (id) DO NOTHING"
    for marker in ("?", "%s")
}


def _to_logged(row: Sequence[Any]) -> LoggedPrediction:
    # Positional: window reads turn every row of a table into one (attribute access on a
    # Row costs more than the rest of this function).
    (
        prediction_id,
        at,
        model,
        version,
        slot,
        client_id,
        shadow_of,
        latency_ms,
        inputs,
        outputs,
    ) = row
    return LoggedPrediction(
        prediction_id,
        at,
        model,
        int(version),
        slot,
        orjson.loads(inputs),
        orjson.loads(outputs),
        float(latency_ms),
        client_id,
        shadow_of,
    )


def _to_segment(row: Row[Any]) -> PredictionSegment:
    return PredictionSegment(
        digest=Digest.parse(row.digest),
        model=row.model,
        version=int(row.version),
        first_at=row.first_at,
        last_at=row.last_at,
        min_id=row.min_id,
        max_id=row.max_id,
        rows=int(row.row_count),
        size=int(row.size),
        created_at=row.created_at,
    )


def _parameters(conn: Connection, rows: Sequence[LoggedPrediction]) -> list[tuple[Any, ...]]:
    """Rows as the driver's parameters, bypassing SQLAlchemy's per-row processing (most of
    the time of a 10,000-row insert otherwise). Times go through the column type's own
    processor, once per distinct time: a request's rows share theirs."""
    column_type = predictions.c.at.type.dialect_impl(conn.dialect)
    process = column_type.bind_processor(conn.dialect)
    times: dict[datetime, Any] = {}
    parameters = []
    for row in rows:
        at = times.get(row.at)
        if at is None:
            at = times[row.at] = row.at if process is None else process(row.at)
        parameters.append(
            (
                row.id,
                at,
                row.model,
                row.version,
                row.slot,
                row.client_id,
                row.shadow_of,
                float(row.latency_ms),
                _json(row.inputs),
                _json(row.outputs),
            )
        )
    return parameters


class SqlPredictions(Predictions):
    """`Predictions` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def compaction_lease(self) -> Iterator[bool]:
        """PostgreSQL: a session advisory lock, released with the block or when the holder's
        connection dies. SQLite (one machine): an exclusive lock on a file by the database."""
        if self._engine.dialect.name == "postgresql":
            with self._engine.connect() as conn:
                held = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": _LEASE}))
                try:
                    yield held
                finally:
                    if held:
                        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LEASE})
                    conn.rollback()
            return
        database = self._engine.url.database
        if not database or database == ":memory:":
            yield True
            return
        import fcntl

        with open(f"{database}.compaction.lock", "a") as lock:  # noqa: PTH123
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # --- rows -----------------------------------------------------------------------------

    def add(self, rows: Sequence[LoggedPrediction]) -> None:
        if not rows:
            return
        try:
            with write_transaction(self._engine) as conn:
                marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
                conn.exec_driver_sql(_INSERT[marker], _parameters(conn, rows))
        # What the rows hold, not the store's health: a text with NUL on PostgreSQL, an
        # integer beyond 64 bits (JSON encoding, SQLite binding), a broken constraint.
        except (
            sa_exc.DataError,
            sa_exc.IntegrityError,
            TypeError,
            ValueError,
            OverflowError,
        ) as exc:
            reason = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
            raise StoreRefused(
                f"the metadata store refused {len(rows):,} prediction rows: "
                f"{type(reason).__name__}: {' '.join(str(reason).split())}"
            ) from exc

    def get(self, prediction_id: str) -> LoggedPrediction | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(*_ROW).where(predictions.c.id == prediction_id)).first()
        return None if row is None else _to_logged(row)

    def window(
        self,
        model: str,
        start: datetime,
        end: datetime,
        *,
        version: int | None = None,
        slot: str | None = None,
    ) -> builtins.list[LoggedPrediction]:
        query = select(*_ROW).where(
            predictions.c.model == model, predictions.c.at >= start, predictions.c.at < end
        )
        if version is not None:
            query = query.where(predictions.c.version == version)
        if slot is not None:
            query = query.where(predictions.c.slot == slot)
        query = query.order_by(predictions.c.at, predictions.c.id)
        with read_transaction(self._engine) as conn:
            return [_to_logged(row) for row in conn.execute(query)]

    def closed(self, before: datetime) -> builtins.list[tuple[str, int, int]]:
        query = (
            select(predictions.c.model, predictions.c.version, func.count())
            .where(predictions.c.at < before)
            .group_by(predictions.c.model, predictions.c.version)
            .order_by(predictions.c.model, predictions.c.version)
        )
        with read_transaction(self._engine) as conn:
            return [(str(m), int(v), int(n)) for m, v, n in conn.execute(query)]

    def oldest(
        self, model: str, version: int, before: datetime, *, limit: int
    ) -> builtins.list[LoggedPrediction]:
        query = (
            select(*_ROW)
            .where(
                predictions.c.model == model,
                predictions.c.version == version,
                predictions.c.at < before,
            )
            .order_by(predictions.c.id)
            .limit(limit)
        )
        with read_transaction(self._engine) as conn:
            return [_to_logged(row) for row in conn.execute(query)]

    # --- segments -------------------------------------------------------------------------

    def add_segment(self, segment: PredictionSegment, *, before: datetime, actor: str) -> None:
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            if not lock_artifact(conn, segment.digest):
                raise NotFound(
                    f"cannot index prediction segment {segment.digest}: the object is not "
                    "recorded as an artifact",
                    hint="store and record the segment object before indexing it",
                )
            known = conn.execute(
                select(prediction_segments.c.digest).where(
                    prediction_segments.c.digest == str(segment.digest)
                )
            ).first()
            if known is not None:
                raise Conflict(f"prediction segment {segment.digest} is already indexed")
            conn.execute(
                insert(prediction_segments).values(
                    digest=str(segment.digest),
                    model=segment.model,
                    version=segment.version,
                    first_at=segment.first_at,
                    last_at=segment.last_at,
                    min_id=segment.min_id,
                    max_id=segment.max_id,
                    row_count=segment.rows,
                    size=segment.size,
                    created_at=now,
                )
            )
            conn.execute(
                insert_ignoring_duplicates(
                    conn,
                    artifact_holders,
                    {
                        "digest": str(segment.digest),
                        "holder": segment_holder(segment.model, segment.version),
                        "created_at": now,
                    },
                    "digest",
                    "holder",
                )
            )
            deleted = conn.execute(
                delete(predictions).where(
                    predictions.c.model == segment.model,
                    predictions.c.version == segment.version,
                    predictions.c.at < before,
                    predictions.c.id >= segment.min_id,
                    predictions.c.id <= segment.max_id,
                )
            ).rowcount
            if deleted != segment.rows:
                # Leaving the transaction by raising rolls back the index and the delete.
                raise Conflict(
                    f"compacting {segment.model}@{segment.version}: the segment holds "
                    f"{segment.rows} rows but {deleted} matched; nothing was changed",
                    hint="another compaction ran at the same time; run it again",
                )

    def segments(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> builtins.list[PredictionSegment]:
        query = select(prediction_segments)
        if model is not None:
            query = query.where(prediction_segments.c.model == model)
        if version is not None:
            query = query.where(prediction_segments.c.version == version)
        if end is not None:
            query = query.where(prediction_segments.c.first_at < end)
        if start is not None:
            query = query.where(prediction_segments.c.last_at >= start)
        query = query.order_by(prediction_segments.c.first_at, prediction_segments.c.digest)
        with read_transaction(self._engine) as conn:
            return [_to_segment(row) for row in conn.execute(query)]

    def segments_holding(self, prediction_id: str) -> builtins.list[PredictionSegment]:
        query = (
            select(prediction_segments)
            .where(
                prediction_segments.c.min_id <= prediction_id,
                prediction_segments.c.max_id >= prediction_id,
            )
            .order_by(prediction_segments.c.min_id.desc())
        )
        with read_transaction(self._engine) as conn:
            return [_to_segment(row) for row in conn.execute(query)]

    def stats(self) -> builtins.list[PredictionLogStats]:
        rows_query = select(
            predictions.c.model,
            predictions.c.version,
            func.count(),
            func.min(predictions.c.at),
            func.max(predictions.c.at),
        ).group_by(predictions.c.model, predictions.c.version)
        segments_query = select(
            prediction_segments.c.model,
            prediction_segments.c.version,
            func.count(),
            func.sum(prediction_segments.c.row_count),
            func.sum(prediction_segments.c.size),
            func.min(prediction_segments.c.first_at),
            func.max(prediction_segments.c.last_at),
        ).group_by(prediction_segments.c.model, prediction_segments.c.version)
        found: dict[tuple[str, int], dict[str, Any]] = {}
        with read_transaction(self._engine) as conn:
            for model, version, count, first, last in conn.execute(rows_query):
                entry = found.setdefault((model, int(version)), _empty_stats())
                entry.update(rows=int(count))
                _widen(entry, _utc(first), _utc(last))
            for model, version, count, rows, size, first, last in conn.execute(segments_query):
                entry = found.setdefault((model, int(version)), _empty_stats())
                entry.update(segments=int(count), segment_rows=int(rows), segment_bytes=int(size))
                _widen(entry, _utc(first), _utc(last))
        return [
            PredictionLogStats(model=model, version=version, **entry)
            for (model, version), entry in sorted(found.items())
        ]


def _empty_stats() -> dict[str, Any]:
    return {
        "rows": 0,
        "segments": 0,
        "segment_rows": 0,
        "segment_bytes": 0,
        "first_at": None,
        "last_at": None,
    }


def _widen(entry: dict[str, Any], first: datetime | None, last: datetime | None) -> None:
    if first is not None and (entry["first_at"] is None or first < entry["first_at"]):
        entry["first_at"] = first
    if last is not None and (entry["last_at"] is None or last > entry["last_at"]):
        entry["last_at"] = last


def _utc(value: Any) -> datetime | None:
    """An aggregate's time: min/max bypass the column type, so SQLite returns text."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
