"""Delayed ground truth in SQL: the `feedback` table, one current label per logged
prediction, and `label_history`, the labels a different later one replaced.

Labels arrive in files of up to millions of rows and in small HTTP batches. `record` first
reads which of the ids already have a label, copies those about to change into the history
(server side, `INSERT ... SELECT`), upserts every row (`INSERT ... ON CONFLICT
(prediction_id) DO UPDATE`) and appends one `labels.recorded` audit event per model, in one
transaction. Writers of feedback take turns (SQLite's write lock; a PostgreSQL
transaction-scoped advisory lock), so nothing slips in between the read and the upsert:
the counts of new and replaced labels, and each history row's revision, are exact.

Statements are prebuilt per backend, bypassing SQLAlchemy's per-row processing: SQLite
takes multi-row VALUES lists of `_CHUNK` rows. PostgreSQL takes each column as one text
value split by the server (`unnest(string_to_array(...))`): psycopg parses placeholders and
quotes array elements in Python, which for 100,000 rows cost 10 s and 3 s; this way the
whole write takes about one.
"""

from __future__ import annotations

import builtins
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from sqlalchemy import Connection, Engine, func, select

from keel.errors import ConfigError
from keel.metadata.base import (
    Feedback,
    FeedbackReceipt,
    FeedbackRow,
    Label,
    Labelled,
    LabelRecord,
    LoggedKey,
)
from keel.metadata.sql.audit import append_event
from keel.metadata.sql.engine import read_transaction, write_transaction
from keel.metadata.sql.schema import feedback, label_history

__all__ = ["SqlFeedback", "decode_label", "encode_label"]

#: SQLite: rows per upsert and ids per `IN (...)` (6 parameters a row stays far below its
#: 32,766). PostgreSQL: rows per array statement.
_CHUNK: Final = 1_000
_PG_CHUNK: Final = 20_000

_COLUMNS: Final = ("prediction_id", "model", "at", "label", "received_at", "received_by")
_PG_TYPES: Final = ("varchar", "varchar", "timestamptz", "text", "timestamptz", "text")
_UPDATE: Final = "ON CONFLICT (prediction_id) DO UPDATE SET " + ", ".join(
    f"{name} = excluded.{name}" for name in _COLUMNS[1:]
)

#: Any constant unique to keel's feedback writers: the key of their PostgreSQL advisory lock.
_ADVISORY_KEY: Final = 0x6B65656C_66656564  # "keelfeed"

#: Separates the values of one PostgreSQL text parameter. JSON text never holds it raw
#: (control characters are escaped) and ids, names and times cannot.
_SEPARATOR: Final = "\x1f"
_SPLIT: Final = "string_to_array(%s, chr(31))"
_PG_UPSERT: Final = (
    f"INSERT INTO feedback ({', '.join(_COLUMNS)}) "  # noqa: S608 - constants only
    f"SELECT * FROM unnest({', '.join(f'{_SPLIT}::{kind}[]' for kind in _PG_TYPES)}) {_UPDATE}"
)
_PG_LABELS: Final = (
    "SELECT prediction_id, label FROM feedback "  # noqa: S608 - constants only
    f"WHERE prediction_id = ANY({_SPLIT})"
)
#: Copies the current labels of some ids into the history, each as the next revision of
#: its prediction (the number of older ones plus one).
_HISTORY_COLUMNS: Final = (
    "prediction_id, revision, model, label, received_at, received_by, superseded_at, superseded_by"
)
_KEEP: Final = (
    f"INSERT INTO label_history ({_HISTORY_COLUMNS}) "  # noqa: S608 - constants only
    "SELECT f.prediction_id, 1 + (SELECT count(*) FROM label_history h "
    "WHERE h.prediction_id = f.prediction_id), f.model, f.label, f.received_at, "
    "f.received_by, {placeholder}, {placeholder} FROM feedback f WHERE f.prediction_id"
)
_PG_KEEP: Final = _KEEP.format(placeholder="%s") + f" = ANY({_SPLIT})"
_PG_LOGGED: Final = (
    "SELECT id, model, version, at FROM predictions "  # noqa: S608 - constants only
    f"WHERE id = ANY({_SPLIT})"
)


def _sqlite_upsert(rows: int) -> str:
    one = f"({', '.join(['?'] * len(_COLUMNS))})"
    return (
        f"INSERT INTO feedback ({', '.join(_COLUMNS)}) "  # noqa: S608 - constants only
        f"VALUES {', '.join([one] * rows)} {_UPDATE}"
    )


def _sqlite_in(query: str, ids: int) -> str:
    return f"{query} IN ({', '.join(['?'] * ids)})"


_SQLITE_KEEP: Final = _KEEP.format(placeholder="?")
_SQLITE_UPSERT: Final = _sqlite_upsert(_CHUNK)
_SQLITE_LABELS: Final = "SELECT prediction_id, label FROM feedback WHERE prediction_id"
_SQLITE_LOGGED: Final = "SELECT id, model, version, at FROM predictions WHERE id"

_LABEL_RULE: Final = "must be a finite number, a string or a boolean"


def encode_label(label: object) -> str:
    """A label as the JSON scalar text stored; `ConfigError` for anything else."""
    if isinstance(label, float) and not math.isfinite(label):
        raise ConfigError(
            f"label {label!r} is not a finite number", problems=[("label", _LABEL_RULE)]
        )
    if not isinstance(label, bool | int | float | str):
        raise ConfigError(
            f"label {label!r} is not a number, a string or a boolean",
            problems=[("label", _LABEL_RULE)],
        )
    try:
        return orjson.dumps(label).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        raise ConfigError(
            f"label {label!r} is too large", problems=[("label", "must fit in 64 bits")]
        ) from None


def decode_label(text: str) -> Label:
    """A stored label's value."""
    value: Label = orjson.loads(text)
    return value


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def _joined(values: Sequence[str]) -> str:
    """Values as one text parameter for `string_to_array`; `ConfigError` if one holds the
    separator (no valid id, name or label does)."""
    text = _SEPARATOR.join(values)
    if text.count(_SEPARATOR) != len(values) - 1:
        raise ConfigError(
            "a prediction id, model name or actor holds a control character",
            problems=[("prediction_id", "must be 32 lowercase hex characters")],
        )
    return text


def _utc(value: Any) -> datetime:
    """A time read by a raw statement: SQLite hands back its text, naive UTC."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class SqlFeedback(Feedback):
    """`Feedback` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(
        self, rows: Sequence[FeedbackRow], *, actor: str, via: str | None = None
    ) -> FeedbackReceipt:
        now = datetime.now(UTC)
        ids = [row.prediction_id for row in rows]
        if len(set(ids)) != len(ids):
            twice = sorted(i for i, n in Counter(ids).items() if n > 1)[:5]
            raise ConfigError(
                f"prediction id(s) given more than once in one batch: {', '.join(twice)}",
                problems=[("prediction_id", "at most one label per prediction in a batch")],
            )
        if not actor:
            raise ConfigError("feedback needs an actor", problems=[("actor", "must not be empty")])
        labels = [encode_label(row.label) for row in rows]
        if not rows:
            return FeedbackReceipt(0, 0, 0, 0, now, actor)
        with write_transaction(self._engine) as conn:
            postgresql = conn.dialect.name == "postgresql"
            if postgresql:
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_KEY,))
            before = self._stored(conn, ids)
            changed = [
                i
                for i, label in zip(ids, labels, strict=True)
                if i in before and before[i] != label
            ]
            if postgresql:
                self._keep_postgresql(conn, changed, now, actor)
                self._upsert_postgresql(conn, rows, labels, now, actor)
            else:
                self._keep_sqlite(conn, changed, now, actor)
                self._upsert_sqlite(conn, rows, labels, now, actor)
            events = self._audit(conn, rows, before, set(changed), now, actor, via)
        return FeedbackReceipt(
            rows=len(rows),
            new=len(rows) - len(before),
            replaced=len(before),
            changed=len(changed),
            received_at=now,
            received_by=actor,
            events=events,
        )

    @staticmethod
    def _audit(
        conn: Connection,
        rows: Sequence[FeedbackRow],
        before: dict[str, str],
        changed: set[str],
        now: datetime,
        actor: str,
        via: str | None,
    ) -> tuple[int, ...]:
        """One `labels.recorded` event per model of the batch, with its counts."""
        counts: dict[str, Counter[str]] = {}
        for row in rows:
            count = counts.setdefault(row.model, Counter())
            count["labels"] += 1
            if row.prediction_id in before:
                count["replaced"] += 1
                count["changed"] += row.prediction_id in changed
            else:
                count["new"] += 1
        events = []
        for model, count in sorted(counts.items()):
            evidence: dict[str, Any] = {
                "labels": count["labels"],
                "new": count["new"],
                "replaced": count["replaced"],
                "changed": count["changed"],
                "batch": len(rows),
            }
            if via is not None:
                evidence["via"] = via
            # The reason line is what `keel audit-log` prints: the counts, readable there.
            summary = (
                f"{count['labels']} label(s): {count['new']} new, {count['replaced']} replaced "
                f"({count['changed']} changed)"
            )
            event = append_event(
                conn,
                actor=actor,
                kind="labels.recorded",
                model=model,
                reason=summary if via is None else f"{summary} via {via}",
                evidence=evidence,
                at=now,
            )
            events.append(event.seq)
        return tuple(events)

    @staticmethod
    def _keep_sqlite(conn: Connection, ids: Sequence[str], now: datetime, actor: str) -> None:
        if not ids:
            return
        process = feedback.c.at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        assert process is not None  # SQLite keeps times as text
        for chunk in _chunks(ids, _CHUNK):
            statement = _sqlite_in(_SQLITE_KEEP, len(chunk))
            conn.exec_driver_sql(statement, (process(now), actor, *chunk))

    @staticmethod
    def _keep_postgresql(conn: Connection, ids: Sequence[str], now: datetime, actor: str) -> None:
        for chunk in _chunks(ids, _PG_CHUNK):
            conn.exec_driver_sql(_PG_KEEP, (now, actor, _joined(chunk)))

    @staticmethod
    def _upsert_sqlite(
        conn: Connection,
        rows: Sequence[FeedbackRow],
        labels: Sequence[str],
        now: datetime,
        actor: str,
    ) -> None:
        # The dialect's own processor: it writes the text SQLAlchemy compares times with.
        process = feedback.c.at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        assert process is not None  # SQLite keeps times as text
        received = process(now)
        parameters: list[Any] = []
        for row, label in zip(rows, labels, strict=True):
            parameters.extend((row.prediction_id, row.model, process(row.at), label))
            parameters.extend((received, actor))
        width = len(_COLUMNS)
        for offset in range(0, len(rows), _CHUNK):
            count = min(_CHUNK, len(rows) - offset)
            statement = _SQLITE_UPSERT if count == _CHUNK else _sqlite_upsert(count)
            chunk = parameters[offset * width : (offset + count) * width]
            conn.exec_driver_sql(statement, tuple(chunk))

    @staticmethod
    def _upsert_postgresql(
        conn: Connection,
        rows: Sequence[FeedbackRow],
        labels: Sequence[str],
        now: datetime,
        actor: str,
    ) -> None:
        received = now.isoformat()
        for offset in range(0, len(rows), _PG_CHUNK):
            chunk = rows[offset : offset + _PG_CHUNK]
            count = len(chunk)
            columns = (
                [row.prediction_id for row in chunk],
                [row.model for row in chunk],
                [row.at.astimezone(UTC).isoformat() for row in chunk],
                labels[offset : offset + count],
                [received] * count,
                [actor] * count,
            )
            conn.exec_driver_sql(_PG_UPSERT, tuple(_joined(values) for values in columns))

    @staticmethod
    def _stored(conn: Connection, ids: Sequence[str]) -> dict[str, str]:
        """The stored label text of each id that has one."""
        found: dict[str, str] = {}
        if conn.dialect.name == "postgresql":
            for chunk in _chunks(ids, _PG_CHUNK):
                result = conn.exec_driver_sql(_PG_LABELS, (_joined(chunk),))
                found.update((i, label) for i, label in result)
            return found
        full = _sqlite_in(_SQLITE_LABELS, _CHUNK)
        for chunk in _chunks(ids, _CHUNK):
            statement = full if len(chunk) == _CHUNK else _sqlite_in(_SQLITE_LABELS, len(chunk))
            found.update((i, label) for i, label in conn.exec_driver_sql(statement, tuple(chunk)))
        return found

    def history(self, prediction_id: str) -> builtins.list[LabelRecord]:
        older = (
            select(label_history)
            .where(label_history.c.prediction_id == prediction_id)
            .order_by(label_history.c.revision)
        )
        current = select(feedback).where(feedback.c.prediction_id == prediction_id)
        with read_transaction(self._engine) as conn:
            found = [
                LabelRecord(
                    prediction_id,
                    int(row.revision),
                    row.model,
                    decode_label(row.label),
                    row.received_at,
                    row.received_by,
                    row.superseded_at,
                    row.superseded_by,
                )
                for row in conn.execute(older)
            ]
            now = conn.execute(current).first()
        if now is not None:
            found.append(
                LabelRecord(
                    prediction_id,
                    len(found) + 1,
                    now.model,
                    decode_label(now.label),
                    now.received_at,
                    now.received_by,
                )
            )
        return found

    def window(self, model: str, start: datetime, end: datetime) -> builtins.list[Labelled]:
        query = (
            select(feedback.c.prediction_id, feedback.c.at, feedback.c.label)
            .where(feedback.c.model == model, feedback.c.at >= start, feedback.c.at < end)
            .order_by(feedback.c.at, feedback.c.prediction_id)
        )
        with read_transaction(self._engine) as conn:
            return [Labelled(i, at, decode_label(label)) for i, at, label in conn.execute(query)]

    def count(
        self, model: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> int:
        query = select(func.count()).select_from(feedback).where(feedback.c.model == model)
        if start is not None:
            query = query.where(feedback.c.at >= start)
        if end is not None:
            query = query.where(feedback.c.at < end)
        with read_transaction(self._engine) as conn:
            return int(conn.execute(query).scalar_one())

    def newest(self, model: str) -> datetime | None:
        # ORDER BY ... LIMIT 1 rather than max(): it reads one entry of the (model,
        # received_at) index, and the column's type gives the time back in UTC.
        query = (
            select(feedback.c.received_at)
            .where(feedback.c.model == model)
            .order_by(feedback.c.received_at.desc())
            .limit(1)
        )
        with read_transaction(self._engine) as conn:
            found: datetime | None = conn.execute(query).scalar()
        return found

    def span(self, model: str) -> tuple[datetime, datetime] | None:
        times = select(feedback.c.at).where(feedback.c.model == model)
        with read_transaction(self._engine) as conn:
            oldest = conn.execute(times.order_by(feedback.c.at).limit(1)).scalar()
            newest = conn.execute(times.order_by(feedback.c.at.desc()).limit(1)).scalar()
        return None if oldest is None or newest is None else (oldest, newest)

    def labels(self, prediction_ids: Iterable[str]) -> dict[str, Label]:
        ids = sorted(set(prediction_ids))
        with read_transaction(self._engine) as conn:
            stored = self._stored(conn, ids)
        return {i: decode_label(text) for i, text in stored.items()}

    def logged(self, prediction_ids: Iterable[str]) -> dict[str, LoggedKey]:
        ids = sorted(set(prediction_ids))
        found: dict[str, LoggedKey] = {}
        with read_transaction(self._engine) as conn:
            postgresql = conn.dialect.name == "postgresql"
            for chunk in _chunks(ids, _PG_CHUNK if postgresql else _CHUNK):
                if postgresql:
                    result = conn.exec_driver_sql(_PG_LOGGED, (_joined(chunk),))
                else:
                    statement = _sqlite_in(_SQLITE_LOGGED, len(chunk))
                    result = conn.exec_driver_sql(statement, tuple(chunk))
                for i, model, version, at in result:
                    found[str(i)] = LoggedKey(str(model), int(version), _utc(at))
        return found
