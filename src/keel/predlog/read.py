"""Reading and compacting the prediction log: what monitoring, `keel explain` and
`keel predictions` use.

Recent predictions are rows in the metadata store (JSON inputs and outputs, written in
batches by `StoredPredictionLog`). `compact` moves closed time ranges into Parquet segments
in the artifact store: one model version's rows each, sorted by id, one typed column per
input and output (`inputs.NAME`, `outputs.NAME`, typed by the version's inference
contract), zstd, row groups of `ROW_GROUP_ROWS` so that a lookup by id decodes one. A
segment is stored first, then indexed and its rows deleted in one transaction, so a
compaction killed at any point loses nothing and duplicates nothing.

    read_window(project, "flights-delay", start, end)   # a pyarrow.Table, typed columns
    get(project, prediction_id)                          # a LoggedPrediction, or None
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import orjson
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

from keel.domain.prediction import LoggedPrediction, PredictionLogStats, PredictionSegment
from keel.domain.times import as_utc, parse, render
from keel.errors import ConfigError, Conflict, NotFound
from keel.predlog.ids import is_prediction_id, normalise_prediction_id

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = [
    "BASE_COLUMNS",
    "PARQUET_MEDIA_TYPE",
    "ROW_GROUP_ROWS",
    "SEGMENT_ROWS",
    "CompactionReport",
    "compact",
    "get",
    "read_window",
    "segment_bytes",
    "stats",
    "to_table",
    "write_segment",
]

_log = logging.getLogger(__name__)

PARQUET_MEDIA_TYPE: Final = "application/vnd.apache.parquet"
#: Most rows per segment: a lookup by id reads (and verifies) one segment, a few MB.
SEGMENT_ROWS: Final = 100_000
#: Rows per Parquet row group: a lookup by id decodes one group.
ROW_GROUP_ROWS: Final = 16_384
#: How often `compact` re-reads a model version's rows after losing a race.
_ATTEMPTS: Final = 3

_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")
#: The columns every window and segment has, before the inputs and outputs.
BASE_COLUMNS: Final = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("at", _TIMESTAMP, nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("slot", pa.string(), nullable=False),
        pa.field("client_id", pa.string()),
        pa.field("shadow_of", pa.string()),
        pa.field("latency_ms", pa.float64(), nullable=False),
    ]
)
_ARROW_TYPES: Final = {
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "string": pa.string(),
    "timestamp": _TIMESTAMP,
    "date": pa.date32(),
}

#: Logical types of a version's inputs and outputs, by name (from its inference contract).
Types = Mapping[str, Mapping[str, str]]


# --- reading ------------------------------------------------------------------------------


def get(project: Workspace, prediction_id: str) -> LoggedPrediction | None:
    """The logged prediction with this id, from the recent rows or its segment; None if it
    was never logged. `ConfigError` for text that is not 32 hex characters (upper case and
    the dashed UUID form are accepted)."""
    normalised = normalise_prediction_id(prediction_id)
    if normalised is None:
        raise ConfigError(
            f"{prediction_id!r} is not a prediction id: expected 32 hex characters "
            "as keel returns them",
            problems=[("prediction_id", "must be 32 hex characters")],
        )
    if not is_prediction_id(normalised):
        return None  # well-formed, but not in the layout keel issues: never logged
    prediction_id = normalised
    store = project.metadata.predictions
    found = store.get(prediction_id)
    if found is not None:
        return found
    # Compaction indexes a segment and deletes its rows in one transaction, so a row
    # missed above is in a segment listed now.
    for segment in store.segments_holding(prediction_id):
        row = _find_in_segment(project, segment, prediction_id)
        if row is not None:
            return row
    return None


def read_window(
    project: Workspace,
    model: str,
    start: datetime,
    end: datetime,
    *,
    version: int | None = None,
    slot: str | None = None,
    columns: Sequence[str] | None = None,
    missing_ok: bool = False,
    segments: bool = True,
) -> pa.Table:
    """Every prediction of `model` with `start <= at < end`, as one Arrow table sorted by
    time then id: `BASE_COLUMNS`, then `inputs.NAME` and `outputs.NAME` typed by the
    inference contract. Only `version`'s or `slot`'s rows if given; only `columns` (in that
    order) if given, and with `missing_ok` only those the window has. Versions with
    different inputs share a table: a column a version lacks is null in its rows. Without
    `segments`, only the rows not compacted yet (the rest being read elsewhere, by Spark)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ConfigError("read_window: start and end must be timezone-aware")
    store = project.metadata.predictions
    parts: list[pa.Table] = []
    expression = (pc.field("at") >= pa.scalar(start, _TIMESTAMP)) & (
        pc.field("at") < pa.scalar(end, _TIMESTAMP)
    )
    if slot is not None:
        expression = expression & (pc.field("slot") == slot)
    wanted = None if columns is None else {*columns, "id", "at", "slot"}
    held = store.segments(model=model, version=version, start=start, end=end) if segments else []
    for segment in held:
        parquet = _open_segment(project, segment)
        names = None if wanted is None else [n for n in parquet.schema_arrow.names if n in wanted]
        parts.append(parquet.read(columns=names).filter(expression))
    recent = store.window(model, start, end, version=version, slot=slot)
    for number in sorted({row.version for row in recent}):
        rows = [row for row in recent if row.version == number]
        parts.append(to_table(rows, _contract_types(project, model, number)))
    if not parts:
        table = to_table([], {})
    else:
        table = _concat(parts).sort_by([("at", "ascending"), ("id", "ascending")])
    if missing_ok and columns is not None:
        columns = [name for name in columns if name in table.column_names]
    return _select(table, columns)


def stats(project: Workspace) -> list[PredictionLogStats]:
    """Rows and segments per model version."""
    return project.metadata.predictions.stats()


def _concat(parts: list[pa.Table]) -> pa.Table:
    """One table from parts whose columns may differ (versions with other inputs) or, rarely,
    disagree on a type (a value its contract type could not hold): such a column becomes
    text in every part rather than failing the read."""
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    types: dict[str, set[pa.DataType]] = {}
    for part in parts:
        for item in part.schema:
            types.setdefault(item.name, set()).add(item.type)
    mixed = {name for name, seen in types.items() if len(seen) > 1}
    unified = []
    for part in parts:
        for name in mixed & set(part.column_names):
            index = part.column_names.index(name)
            part = part.set_column(index, name, pc.cast(part[name], pa.string()))
        unified.append(part)
    return pa.concat_tables(unified, promote_options="permissive")


def _select(table: pa.Table, columns: Sequence[str] | None) -> pa.Table:
    if columns is None:
        return table
    missing = [name for name in columns if name not in table.column_names]
    if missing:
        raise ConfigError(
            f"read_window: unknown column(s) {', '.join(missing)} "
            f"(the window has {', '.join(table.column_names)})",
            problems=[("columns", "must name columns of the window")],
        )
    return table.select(list(columns))


def _open_segment(project: Workspace, segment: PredictionSegment) -> pq.ParquetFile:
    # read_bytes verifies the object against its digest before handing out a byte.
    return pq.ParquetFile(pa.BufferReader(project.artifacts.read_bytes(segment.digest)))


def _find_in_segment(
    project: Workspace, segment: PredictionSegment, prediction_id: str
) -> LoggedPrediction | None:
    parquet = _open_segment(project, segment)
    column = parquet.schema_arrow.get_field_index("id")
    for index in range(parquet.metadata.num_row_groups):
        statistics = parquet.metadata.row_group(index).column(column).statistics
        if (
            statistics is not None
            and statistics.has_min_max
            and not statistics.min <= prediction_id <= statistics.max
        ):
            continue  # row groups are id ranges: the statistics rule this one out
        group = parquet.read_row_group(index)
        match = group.filter(pc.equal(group["id"], prediction_id))
        if match.num_rows:
            return _from_record(match.slice(0, 1).to_pylist()[0])
    return None


def _from_record(record: Mapping[str, Any]) -> LoggedPrediction:
    inputs = {
        name.removeprefix("inputs."): _json_value(value)
        for name, value in record.items()
        if name.startswith("inputs.")
    }
    outputs = {
        name.removeprefix("outputs."): _json_value(value)
        for name, value in record.items()
        if name.startswith("outputs.")
    }
    at: datetime = record["at"]
    return LoggedPrediction(
        id=record["id"],
        at=at.astimezone(UTC),
        model=record["model"],
        version=int(record["version"]),
        slot=record["slot"],
        inputs=inputs,
        outputs=outputs,
        latency_ms=float(record["latency_ms"]),
        client_id=record["client_id"],
        shadow_of=record["shadow_of"],
    )


def _json_value(value: Any) -> Any:
    """A typed Parquet value as the JSON value it was logged as (times as ISO 8601, dates as
    YYYY-MM-DD)."""
    if isinstance(value, dt.date):
        return render(value)
    return value


# --- typing rows --------------------------------------------------------------------------


def _contract_types(project: Workspace, model: str, version: int) -> Types:
    """A registered version's input and output types; empty (inferred) for unknown ones."""
    try:
        document = project.metadata.models.get(model, version).inference_contract
    except NotFound:
        return {}
    return {
        "inputs": {str(f["name"]): str(f["type"]) for f in document.get("inputs", [])},
        "outputs": {str(f["name"]): str(f["type"]) for f in document.get("outputs", [])},
    }


def to_table(rows: Sequence[LoggedPrediction], types: Types) -> pa.Table:
    """Rows as an Arrow table: `BASE_COLUMNS`, then one typed column per input and output.

    Types come from `types` (the inference contract); a name it lacks is inferred from the
    values. A value its column type cannot hold is kept as its JSON text rather than lost.
    """
    arrays: list[pa.Array] = [
        pa.array([r.id for r in rows], pa.string()),
        pa.array([r.at for r in rows], _TIMESTAMP),
        pa.array([r.model for r in rows], pa.string()),
        pa.array([r.version for r in rows], pa.int64()),
        pa.array([r.slot for r in rows], pa.string()),
        pa.array([r.client_id for r in rows], pa.string()),
        pa.array([r.shadow_of for r in rows], pa.string()),
        pa.array([r.latency_ms for r in rows], pa.float64()),
    ]
    names = list(BASE_COLUMNS.names)
    for part, documents in (
        ("inputs", [r.inputs for r in rows]),
        ("outputs", [r.outputs for r in rows]),
    ):
        declared = types.get(part, {})
        for name in _names(declared, documents):
            names.append(f"{part}.{name}")
            arrays.append(_typed([d.get(name) for d in documents], declared.get(name)))
    fields = [
        BASE_COLUMNS.field(name) if name in BASE_COLUMNS.names else pa.field(name, array.type)
        for name, array in zip(names, arrays, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _names(declared: Mapping[str, str], documents: Iterable[Mapping[str, Any]]) -> list[str]:
    names = list(declared)
    known = set(names)
    for document in documents:
        for name in document:
            if name not in known:
                known.add(name)
                names.append(name)
    return names


def _typed(values: list[Any], logical: str | None) -> pa.Array:
    arrow_type = _ARROW_TYPES.get(logical or "")
    try:
        if arrow_type is None:
            return pa.array(values)
        if logical == "timestamp":
            return _timestamps(values)
        if logical == "date":
            return pa.array([_day(v) for v in values], arrow_type)
        return pa.array(values, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    if logical == "integer":  # integral floats (3.0) are valid integers in requests
        try:
            return pa.array(
                [int(v) if isinstance(v, float) and v.is_integer() else v for v in values],
                pa.int64(),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            pass
    try:
        return pa.array(values)  # whatever type the values themselves have
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    # Never lose a value: keep what no one type can hold as its JSON text.
    return pa.array(
        [None if v is None else orjson.dumps(v, default=str).decode() for v in values],
        pa.string(),
    )


def _timestamps(values: list[Any]) -> pa.Array:
    if all(v is None or isinstance(v, str) for v in values):
        try:
            return pa.array(values, pa.string()).cast(_TIMESTAMP)
        except pa.ArrowInvalid:
            pass  # e.g. a time without a zone: parse one by one below
    return pa.array([_moment(v) for v in values], _TIMESTAMP)


def _day(value: Any) -> dt.date | None:
    if value is None or (isinstance(value, dt.date) and not isinstance(value, datetime)):
        return value
    parsed = parse(value, "date")
    assert not isinstance(parsed, datetime)
    return parsed


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return as_utc(value)
    return as_utc(parse(value, "timestamp"))


# --- compaction ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CompactionReport:
    """What one `compact` run moved into segments."""

    before: datetime
    segments: list[PredictionSegment] = field(default_factory=list)
    #: Why nothing was compacted this time (another process held the lease), else None.
    skipped: str | None = None

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.segments)

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "ok": True,
            "before": self.before.isoformat(),
            "rows": self.rows,
            "bytes": sum(s.size for s in self.segments),
            "segments": [s.to_dict() for s in self.segments],
        }
        if self.skipped is not None:
            document["skipped"] = self.skipped
        return document


def segment_bytes(table: pa.Table) -> bytes:
    """A segment's Parquet bytes: zstd, statistics on, `ROW_GROUP_ROWS` rows per group."""
    buffer = io.BytesIO()
    pq.write_table(
        table, buffer, compression="zstd", row_group_size=ROW_GROUP_ROWS, write_statistics=True
    )
    return buffer.getvalue()


def write_segment(
    project: Workspace, rows: Sequence[LoggedPrediction], types: Types
) -> PredictionSegment:
    """Store rows (one model version's, sorted by id) as a Parquet object and record it,
    unheld: `Predictions.add_segment` holds and indexes it."""
    stored = project.artifacts.put_bytes(segment_bytes(to_table(rows, types)))
    project.metadata.artifacts.record(
        stored.digest, size=stored.size, media_type=PARQUET_MEDIA_TYPE, actor=project.settings.user
    )
    times = [r.at for r in rows]
    return PredictionSegment(
        digest=stored.digest,
        model=rows[0].model,
        version=rows[0].version,
        first_at=min(times),
        last_at=max(times),
        min_id=rows[0].id,
        max_id=rows[-1].id,
        rows=len(rows),
        size=stored.size,
        created_at=datetime.now(UTC),
    )


def compact(
    project: Workspace,
    *,
    older_than: timedelta = timedelta(hours=1),
    segment_rows: int = SEGMENT_ROWS,
    now: datetime | None = None,
    exclusive: bool = False,
) -> CompactionReport:
    """Move every prediction older than `older_than` into segments, per model version.

    Safe to run while the server logs and while another compaction runs: a segment whose
    rows changed meanwhile is not indexed (its object is left for gc) and is redone.
    `exclusive` (what servers do): compact only while holding the store's compaction lease,
    and skip, saying so, when another process holds it, so replicas do not do it twice.
    """
    if segment_rows < 1:
        raise ConfigError("segment_rows must be at least 1")
    before = (now or datetime.now(UTC)) - older_than
    store = project.metadata.predictions
    if exclusive:
        with store.compaction_lease() as held:
            if not held:
                return CompactionReport(before, skipped="another process holds the lease")
            return compact(project, older_than=older_than, segment_rows=segment_rows, now=now)
    report = CompactionReport(before)
    for model, version, _count in store.closed(before):
        types = _contract_types(project, model, version)
        conflicts = 0
        while True:
            rows = store.oldest(model, version, before, limit=segment_rows)
            if not rows:
                break
            segment = write_segment(project, rows, types)
            try:
                store.add_segment(segment, before=before, actor=project.settings.user)
            except Conflict:
                conflicts += 1
                if conflicts >= _ATTEMPTS:
                    raise
                _log.info("compacting %s@%d raced another writer; again", model, version)
                continue
            report.segments.append(segment)
            if len(rows) < segment_rows:
                break
    return report
