"""Delayed ground truth: labels that arrive after the prediction, joined to the prediction
log, and the model's performance per window over the predictions that have one.

    table = read_feedback_file(Path("labels.csv"))     # CSV, Parquet or JSON lines
    result = ingest(project, table)                    # all or nothing
    performance(project, "flights-delay", start=t0, end=t1, window=timedelta(days=1))

Labels join predictions by the id keel returned with each one (`monitoring.feedback.join:
id`, the default), or by entity key and time (`join: entity`): the newest prediction of
the model whose inputs carry the row's `data.entity_key` values, made at most `max_lag`
before the time the label is about. Everything is checked before anything is written: a
missing column, a null or non-finite label, a malformed id, an id that names no logged
prediction, a row that matches nothing, two rows for one prediction. Each problem names the
field, the rule and the first rows; nothing is recorded then.

Performance uses the metric definitions of training (`keel.metrics`), on the
model's logged outputs: `probability` for score metrics (roc_auc, log_loss, ...),
`prediction` for the others. A shadow row takes the label of the request it shadowed.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.domain.metric import METRICS
from keel.domain.times import NotATime, as_utc, is_temporal, parse, to_utc
from keel.errors import ConfigError, ContractViolation, DataError, DependencyMissing
from keel.metadata.base import FeedbackReceipt, FeedbackRow, Label, LoggedKey
from keel.predlog.ids import is_prediction_id, normalise_prediction_id
from keel.spec import KNOWN_METRICS, FeedbackSpec, MetricSpec

if TYPE_CHECKING:
    from keel.spec import ProjectSpec
    from keel.workspace import Workspace

__all__ = [
    "MIN_LABELS",
    "FeedbackProblem",
    "FeedbackResult",
    "Resolution",
    "WindowPerformance",
    "align",
    "check_feedback",
    "default_model",
    "ingest",
    "measure",
    "monitored_metrics",
    "performance",
    "read_feedback_file",
    "receive",
    "records_table",
    "resolve",
    "score_window",
]

#: Windows with fewer labelled predictions get no value: an AUC over a dozen rows swings
#: by tenths between two draws of the same model.
MIN_LABELS: Final = 30
#: Rows named per problem in an error, and unknown ids listed.
SHOWN: Final = 5

_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")
_ID_RULE: Final = "must be a prediction id: 32 lowercase hex characters, as keel returns them"
_LABEL_RULE: Final = "must be a finite number, a string or a boolean"
_CSV: Final = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst")
_PARQUET: Final = (".parquet", ".pq", ".parq")
_JSON_LINES: Final = (".jsonl", ".ndjson", ".json")
#: Columns a window of predictions is read with for performance.
_SCORE_COLUMNS: Final = ("outputs.prediction", "outputs.probability")


# --- problems -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackProblem:
    """Rows of one field that break one rule: how many, and the first few (0-based).
    `count` 0 means the field as a whole (a missing column, a wrong type)."""

    field: str
    rule: str
    count: int = 0
    rows: tuple[int, ...] = ()

    def __str__(self) -> str:
        if not self.count:
            return f"{self.field}: {self.rule}"
        shown = ", ".join(str(r + 1) for r in self.rows)
        more = f" and {self.count - len(self.rows):,} more" if self.count > len(self.rows) else ""
        return f"{self.field}: {self.rule} (row {shown}{more})"

    def fields(self, prefix: str = "feedback") -> list[tuple[str, str]]:
        """(field, rule) pairs naming each shown record, as `feedback[3].label` (0-based,
        like the JSON list)."""
        if not self.rows:
            return [(f"{prefix}[*].{self.field}", self.rule)]
        return [(f"{prefix}[{row}].{self.field}", self.rule) for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        rows = [row + 1 for row in self.rows]  # as the messages count them
        return {"field": self.field, "rule": self.rule, "count": self.count, "rows": rows}


def _problem(name: str, rule: str, mask: pa.ChunkedArray | pa.Array) -> FeedbackProblem | None:
    rows = pc.indices_nonzero(pc.fill_null(mask, False))
    if not len(rows):
        return None
    return FeedbackProblem(name, rule, len(rows), tuple(rows.slice(0, SHOWN).to_pylist()))


def _listed(problems: Sequence[FeedbackProblem]) -> str:
    shown = "; ".join(str(p) for p in problems[:SHOWN])
    more = f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
    return shown + more


# --- reading ------------------------------------------------------------------------------


def read_feedback_file(path: Path, *, id_column: str = "prediction_id") -> pa.Table:
    """A feedback file as a table: CSV (optionally compressed), Parquet or JSON lines, by
    its name. `DataError` naming the file (and the line, for JSON lines) when it cannot be
    read; the rows themselves are checked by `check_feedback`."""
    from keel.data import read_table

    name = path.name.lower()
    if not path.is_file():
        raise DataError(f"{path}: no such file", path=path)
    if name.endswith(_PARQUET):
        return read_table(path, format="parquet")
    if name.endswith(_JSON_LINES):
        return _read_json_lines(path)
    if not name.endswith(_CSV):
        kinds = ", ".join(_CSV + _PARQUET + _JSON_LINES)
        raise DataError(
            f"{path}: cannot tell the format from the name: use one of {kinds}", path=path
        )
    table = read_table(path, format="csv")
    if id_column in table.column_names and not pa.types.is_string(table[id_column].type):
        # A column of ids that happen to be all digits reads as numbers: read it as text.
        import pyarrow.csv as pcsv  # type: ignore[import-untyped,unused-ignore]

        ids = pcsv.read_csv(
            path,
            convert_options=pcsv.ConvertOptions(
                column_types={id_column: pa.string()}, include_columns=[id_column]
            ),
        )[id_column]
        table = table.set_column(table.column_names.index(id_column), id_column, ids)
    return table


def _read_json_lines(path: Path) -> pa.Table:
    records: list[object] = []
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise DataError(
                        f"{path}: line {number}, column {exc.colno}: not valid JSON: {exc.msg}",
                        path=path,
                    ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}", path=path) from None
    table, problems = records_table(records)
    if problems:
        raise DataError(
            f"{path}: {len(problems)} problem(s) (row 1 is the first record): {_listed(problems)}",
            path=path,
            hint="nothing was recorded",
        )
    return table


def records_table(records: Sequence[object]) -> tuple[pa.Table, list[FeedbackProblem]]:
    """JSON records (objects of scalars) as a table, one typed column per field, and the
    problems found: a record that is not an object, a value that is not a scalar, a field
    mixing text, numbers and booleans."""
    problems: list[FeedbackProblem] = []
    names: dict[str, None] = {}
    not_objects: list[int] = []
    for index, record in enumerate(records):
        if isinstance(record, dict):
            names.update(dict.fromkeys(record))
        else:
            not_objects.append(index)
    if not_objects:
        problems.append(
            FeedbackProblem(
                "(record)", "must be an object", len(not_objects), tuple(not_objects[:SHOWN])
            )
        )
        return pa.table({}), problems
    objects: list[dict[str, Any]] = [r for r in records if isinstance(r, dict)]
    columns: dict[str, pa.Array] = {}
    for name in names:
        values = [record.get(name) for record in objects]
        column, problem = _json_column(name, values)
        if problem is not None:
            problems.append(problem)
        else:
            columns[name] = column
    return pa.table(columns) if not problems else pa.table({}), problems


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return "other"


def _json_column(name: str, values: list[Any]) -> tuple[pa.Array, FeedbackProblem | None]:
    kinds = [_kind(v) for v in values]
    nested = [i for i, k in enumerate(kinds) if k == "other"]
    if nested:
        return pa.nulls(0), FeedbackProblem(
            name, "must be a number, a string or a boolean", len(nested), tuple(nested[:SHOWN])
        )
    present = {k for k in kinds if k != "null"}
    if len(present) > 1:
        # Name the rows of the rarer kinds: the odd ones out.
        counts = {k: kinds.count(k) for k in present}
        usual = max(counts, key=lambda k: counts[k])
        odd = [i for i, k in enumerate(kinds) if k not in ("null", usual)]
        return pa.nulls(0), FeedbackProblem(
            name,
            f"mixes {', '.join(sorted(present))}: expected {usual} like most rows",
            len(odd),
            tuple(odd[:SHOWN]),
        )
    kind = next(iter(present), "null")
    if kind == "number" and all(isinstance(v, int) for v in values if v is not None):
        too_large = [i for i, v in enumerate(values) if v is not None and abs(v) >= 2**63]
        if too_large:
            return pa.nulls(0), FeedbackProblem(
                name, "must fit in 64 bits", len(too_large), tuple(too_large[:SHOWN])
            )
        return pa.array(values, pa.int64()), None
    arrow_type = {"boolean": pa.bool_(), "number": pa.float64(), "text": pa.string()}
    return pa.array(values, arrow_type.get(kind, pa.null())), None


# --- checking -----------------------------------------------------------------------------


def check_feedback(
    table: pa.Table, spec: FeedbackSpec, entity_key: Sequence[str] = ()
) -> tuple[pa.Table, list[FeedbackProblem]]:
    """Check every row; returns the rows normalised and every problem found.

    The normalised table has `row` (the row's 0-based index), `label`, and for id joins
    `prediction_id`; for entity joins the key columns and `time` (UTC). Other columns of
    the input are ignored.
    """
    problems: list[FeedbackProblem] = []
    columns: dict[str, pa.ChunkedArray] = {
        "row": pa.chunked_array([pa.array(range(table.num_rows), pa.int64())])
    }
    label = _column(table, spec.label_column, problems)
    if label is not None:
        label = _check_label(spec.label_column, label, problems)
        if label is not None:
            columns["label"] = label
    if spec.join == "id":
        ids = _column(table, spec.id_column, problems)
        if ids is not None:
            ids = _check_ids(spec.id_column, ids, problems)
            if ids is not None:
                columns["prediction_id"] = ids
    else:
        if not entity_key:
            raise ConfigError(
                "monitoring.feedback.join is 'entity' but data.entity_key names no column",
                problems=[
                    ("data.entity_key", "required when monitoring.feedback.join is 'entity'")
                ],
            )
        for key in entity_key:
            values = _column(table, key, problems)
            if values is not None:
                _add(problems, _problem(key, "must not be null", values.is_null()))
                columns[key] = values
        assert spec.time_column is not None  # FeedbackSpec requires it for entity joins
        times = _column(table, spec.time_column, problems)
        if times is not None:
            utc = _utc_times(spec.time_column, times, problems)
            if utc is not None:
                columns["time"] = utc
    if problems:
        return pa.table({}), problems
    return pa.table(columns), problems


def _add(problems: list[FeedbackProblem], problem: FeedbackProblem | None) -> None:
    if problem is not None:
        problems.append(problem)


def _column(table: pa.Table, name: str, problems: list[FeedbackProblem]) -> pa.ChunkedArray | None:
    if name not in table.column_names:
        present = ", ".join(table.column_names) or "none"
        problems.append(FeedbackProblem(name, f"missing column (the columns are: {present})"))
        return None
    column = table[name]
    if pa.types.is_dictionary(column.type):
        column = pa.chunked_array(
            [chunk.dictionary_decode() for chunk in column.chunks], column.type.value_type
        )
    if pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    return column


def _check_ids(
    name: str, ids: pa.ChunkedArray, problems: list[FeedbackProblem]
) -> pa.ChunkedArray | None:
    if pa.types.is_null(ids.type):
        problems.append(
            FeedbackProblem(name, "must not be null", len(ids), tuple(range(min(len(ids), SHOWN))))
        )
        return None
    if not pa.types.is_string(ids.type):
        problems.append(FeedbackProblem(name, f"{_ID_RULE}; the column holds {ids.type}"))
        return None
    found = len(problems)
    _add(problems, _problem(name, "must not be null", ids.is_null()))
    # Ids as people paste them (upper case, the dashed UUID form, spaces) are the ids keel
    # stores, as `keel explain` takes them.
    given = ids.to_pylist()
    normalised = [None if v is None else normalise_prediction_id(v) or v for v in given]
    ids = pa.chunked_array([pa.array(normalised, pa.string())])
    malformed = pa.array([v is not None and not is_prediction_id(v) for v in normalised])
    _add(problems, _problem(name, _ID_RULE, malformed))
    if len(problems) == found:
        _add(
            problems,
            _problem(name, "appears more than once: one label per prediction", _duplicates(ids)),
        )
    return ids if len(problems) == found else None


def _duplicates(values: pa.ChunkedArray) -> pa.Array:
    """A mask of the rows whose value an earlier row already had."""
    table = pa.table({"value": values, "row": pa.array(range(len(values)), pa.int64())})
    first = table.group_by("value").aggregate([("row", "min")])
    keep = pc.is_in(table["row"], value_set=first["row_min"])
    return pc.invert(keep)


def _check_label(
    name: str, label: pa.ChunkedArray, problems: list[FeedbackProblem]
) -> pa.ChunkedArray | None:
    kind = label.type
    if pa.types.is_decimal(kind) or pa.types.is_floating(kind):
        label = pc.cast(label, pa.float64())
    elif pa.types.is_integer(kind):
        label = pc.cast(label, pa.int64())
    elif pa.types.is_null(kind):
        problems.append(
            FeedbackProblem(
                name, "must not be null", len(label), tuple(range(min(len(label), SHOWN)))
            )
        )
        return None
    elif not (pa.types.is_boolean(kind) or pa.types.is_string(kind)):
        problems.append(FeedbackProblem(name, f"{_LABEL_RULE}; the column holds {kind}"))
        return None
    found = len(problems)
    _add(problems, _problem(name, "must not be null", label.is_null()))
    if pa.types.is_floating(label.type):
        _add(problems, _problem(name, "must be a finite number", pc.invert(pc.is_finite(label))))
    if pa.types.is_string(label.type):
        _add(problems, _problem(name, "must not be empty", pc.equal(pc.utf8_length(label), 0)))
    return label if len(problems) == found else None


def _utc_times(
    name: str, column: pa.ChunkedArray, problems: list[FeedbackProblem]
) -> pa.ChunkedArray | None:
    """The column as UTC times: timestamps (naive ones are UTC), dates, or ISO 8601 text."""
    kind = column.type
    if is_temporal(kind):
        times: pa.ChunkedArray = to_utc(column)
        _add(problems, _problem(name, "must not be null", times.is_null()))
        return times
    if not pa.types.is_string(kind):
        problems.append(
            FeedbackProblem(name, f"must be a time (ISO 8601); the column holds {kind}")
        )
        return None
    parsed: list[datetime | None] = []
    bad: list[bool] = []
    for text in column.to_pylist():
        moment = _parse_time(text)
        parsed.append(moment)
        bad.append(text is not None and moment is None)
    _add(problems, _problem(name, "must not be null", column.is_null()))
    _add(
        problems,
        _problem(name, "must be a time in ISO 8601, e.g. 2024-05-01T12:00:00Z", pa.array(bad)),
    )
    return pa.chunked_array([pa.array(parsed, _TIMESTAMP)])


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return as_utc(parse(text, "timestamp"))
    except NotATime:
        return None


# --- resolving: which logged prediction each row is about ----------------------------------


@dataclass(frozen=True)
class Resolution:
    """Checked rows joined to the prediction log: the labels to record, the rows that name
    no logged prediction (with their ids, for id joins), and what made the join fail."""

    rows: list[FeedbackRow]
    unknown: list[int] = field(default_factory=list)  # 0-based rows
    unknown_ids: list[str] = field(default_factory=list)
    problems: list[FeedbackProblem] = field(default_factory=list)


def default_model(project: Workspace, model: str | None = None) -> str:
    """`model` if it is registered; else the project's own model (named like the project),
    or the only registered one. `NotFound` or `ConfigError` otherwise."""
    registry = project.metadata.models
    if model is not None:
        registry.versions(model)  # NotFound, naming the models there are
        return model
    names = [m.name for m in registry.list_models()]
    if project.spec.name in names:
        return project.spec.name
    if len(names) == 1:
        return names[0]
    raise ConfigError(
        f"name the model: this project has {len(names)} registered models "
        f"({', '.join(names) or 'none'}) and none is named like the project",
        problems=[("model", "required when the project has several models")],
    )


def resolve(project: Workspace, checked: pa.Table, *, model: str | None = None) -> Resolution:
    """Join checked rows (`check_feedback`) to the prediction log, by id or by entity key
    and time as keel.yaml says. With `model`, only that model's predictions match."""
    spec = project.spec.monitoring.feedback
    if spec.join == "id":
        if model is not None:
            default_model(project, model)  # NotFound for a model never registered
        return _resolve_ids(project, checked, model, spec.id_column, spec.label_column)
    keys = project.spec.data.entity_key if project.spec.data is not None else []
    return _resolve_entities(project, checked, default_model(project, model), keys, spec)


def _resolve_ids(
    project: Workspace, checked: pa.Table, model: str | None, id_column: str, label_column: str
) -> Resolution:
    ids: list[str] = checked["prediction_id"].to_pylist()
    labels: list[Label] = checked["label"].to_pylist()
    found = _logged(project, ids, model)
    rows: list[FeedbackRow] = []
    typed: list[tuple[int, Label, str, int | None]] = []
    unknown: list[int] = []
    elsewhere: list[int] = []
    for index, (prediction_id, label) in enumerate(zip(ids, labels, strict=True)):
        key = found.get(prediction_id)
        if key is None:
            unknown.append(index)
        elif model is not None and key.model != model:
            elsewhere.append(index)
        else:
            rows.append(FeedbackRow(prediction_id, key.model, key.at, label))
            typed.append((index, label, key.model, key.version))
    problems = []
    if elsewhere:
        problems.append(
            FeedbackProblem(
                id_column,
                f"names a prediction of another model than {model}",
                len(elsewhere),
                tuple(elsewhere[:SHOWN]),
            )
        )
    _add(problems, _label_types(project, label_column, typed))
    return Resolution(rows, unknown, [ids[i] for i in unknown], problems)


#: The kind of label each recorded prediction type takes.
_LABEL_KINDS: Final = {
    "integer": "number",
    "float": "number",
    "string": "text",
    "boolean": "boolean",
}


def _label_types(
    project: Workspace, name: str, typed: Sequence[tuple[int, Label, str, int | None]]
) -> FeedbackProblem | None:
    """Rows whose label is not of the kind the model predicts (text for a 0/1 model, ...):
    such a label would leave its window's performance blank. The kind comes from the
    prediction output recorded in the version's inference contract (`None` as the version:
    the model's newest)."""
    expected: dict[tuple[str, int | None], str | None] = {}
    wrong: list[int] = []
    first: tuple[str, str, str, Label] | None = None
    for row, label, model, version in typed:
        key = (model, version)
        if key not in expected:
            expected[key] = _prediction_type(project, model, version)
        wanted = expected[key]
        kind = _LABEL_KINDS.get(wanted or "")
        if kind is None or _kind(label) == kind:
            continue
        wrong.append(row)
        # The example shown: a value that is plainly of another kind ("yes", not "1").
        if first is None or (_numeric_text(first[3]) and not _numeric_text(label)):
            first = (model, str(wanted), kind, label)
    if first is None:
        return None
    model, wanted, kind, label = first
    wanted_words = {"number": "a number", "text": "text", "boolean": "true or false"}[kind]
    return FeedbackProblem(
        name,
        f"must be {wanted_words}, like the predictions of {model} (its prediction output is "
        f"{wanted}); got {_kind(label)} {label!r}",
        len(wrong),
        tuple(wrong[:SHOWN]),
    )


def _numeric_text(label: Label) -> bool:
    if not isinstance(label, str):
        return False
    try:
        float(label)
    except ValueError:
        return False
    return True


def _prediction_type(project: Workspace, model: str, version: int | None) -> str | None:
    from keel.errors import NotFound

    try:
        if version is None:
            newest = project.metadata.models.versions(model, limit=1)
            if not newest:
                return None
            found = newest[0]
        else:
            found = project.metadata.models.get(model, version)
    except NotFound:
        return None
    for output in found.inference_contract.get("outputs", []):
        if output.get("name") == "prediction":
            return str(output.get("type"))
    return None


def _logged(project: Workspace, ids: Sequence[str], model: str | None) -> dict[str, LoggedKey]:
    """Model, version and time of each id the log holds: recent rows by primary key, then
    compacted ones from the segments whose id range covers them (each opened once)."""
    found = project.metadata.feedback.logged(ids)
    missing = sorted(set(ids) - found.keys())
    if not missing:
        return found
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    for segment in project.metadata.predictions.segments(model=model):
        low = bisect.bisect_left(missing, segment.min_id)
        high = bisect.bisect_right(missing, segment.max_id)
        if low == high:
            continue
        data = project.artifacts.read_bytes(segment.digest)  # verified against its digest
        part = pq.ParquetFile(pa.BufferReader(data)).read(columns=["id", "at", "model", "version"])
        hits = part.filter(pc.is_in(part["id"], value_set=pa.array(missing[low:high], pa.string())))
        for record in hits.to_pylist():
            found[record["id"]] = LoggedKey(
                record["model"], int(record["version"]), record["at"].astimezone(UTC)
            )
        if hits.num_rows:
            missing = [i for i in missing if i not in found]
            if not missing:
                break
    return found


def _resolve_entities(
    project: Workspace, checked: pa.Table, model: str, keys: Sequence[str], spec: FeedbackSpec
) -> Resolution:
    """Each row's prediction: the newest of `model` (not a shadow's) whose inputs equal the
    row's key, made in `[time - max_lag, time]`. Rows are taken in time buckets, each read
    with the predictions it can match, so memory holds a bucket, not the history."""
    _check_entity_inputs(project, model, keys)
    width = max(spec.max_lag, timedelta(days=1))
    checked = checked.take(pc.sort_indices(checked, sort_keys=[("time", "ascending")]))
    times: list[datetime] = checked["time"].to_pylist()
    matches: dict[int, tuple[str, datetime]] = {}  # row -> (prediction id, its time)
    problems: list[FeedbackProblem] = []
    offset = 0
    while offset < len(times):
        start = align(times[offset], width)
        stop = bisect.bisect_left(times, start + width, lo=offset)
        bucket = checked.slice(offset, stop - offset)
        offset = stop
        found = _match_bucket(project, model, keys, spec.max_lag, bucket, start, start + width)
        if isinstance(found, FeedbackProblem):
            return Resolution([], problems=[found])
        for row, match in found.items():
            matches.setdefault(row, match)
    labels: list[Label] = checked["label"].to_pylist()
    rows: list[FeedbackRow] = []
    unknown: list[int] = []
    claimed: dict[str, int] = {}
    twice: list[int] = []
    typed: list[tuple[int, Label, str, int | None]] = []
    pairs = zip(checked["row"].to_pylist(), labels, strict=True)
    for row, label in sorted(pairs, key=lambda pair: int(pair[0])):
        matched = matches.get(row)
        if matched is None:
            unknown.append(row)
            continue
        prediction_id, at = matched
        if prediction_id in claimed:
            twice.append(row)
            continue
        claimed[prediction_id] = row
        rows.append(FeedbackRow(prediction_id, model, at.astimezone(UTC), label))
        typed.append((row, label, model, None))
    if twice:
        problems.append(
            FeedbackProblem(
                ", ".join(keys),
                "matches the same prediction as an earlier row: one label per prediction",
                len(twice),
                tuple(twice[:SHOWN]),
            )
        )
    _add(problems, _label_types(project, spec.label_column, typed))
    return Resolution(rows, unknown, [], problems)


def _match_bucket(
    project: Workspace,
    model: str,
    keys: Sequence[str],
    lag: timedelta,
    bucket: pa.Table,
    start: datetime,
    end: datetime,
) -> dict[int, tuple[str, datetime]] | FeedbackProblem:
    """The newest matching prediction of each row of a bucket whose times lie in
    `[start, end)`, read from the predictions of `[start - lag, end)`."""
    columns = ["id", "at", "slot", *(f"inputs.{k}" for k in keys)]
    window = _read(project, model, start - lag, end, columns)
    window = window.filter(pc.not_equal(window["slot"], "shadow"))
    if not window.num_rows:
        return {}
    left: dict[str, Any] = {"row": bucket["row"], "time": bucket["time"]}
    right: dict[str, Any] = {"id": window["id"], "at": window["at"]}
    for number, key in enumerate(keys):
        aligned = _align_key(key, bucket[key], window[f"inputs.{key}"])
        if isinstance(aligned, FeedbackProblem):
            return aligned
        left[f"k{number}"], right[f"k{number}"] = aligned
    joined = pa.table(left).join(
        pa.table(right), keys=[f"k{n}" for n in range(len(keys))], join_type="inner"
    )
    since = pc.subtract(joined["time"], pa.scalar(lag, pa.duration("us")))
    joined = joined.filter(
        pc.and_(pc.less_equal(joined["at"], joined["time"]), pc.greater_equal(joined["at"], since))
    )
    newest = joined.sort_by([("row", "ascending"), ("at", "descending"), ("id", "descending")])
    found: dict[int, tuple[str, datetime]] = {}
    for row, prediction_id, at in zip(
        newest["row"].to_pylist(), newest["id"].to_pylist(), newest["at"].to_pylist(), strict=True
    ):
        found.setdefault(row, (prediction_id, at))
    return found


def _check_entity_inputs(project: Workspace, model: str, keys: Sequence[str]) -> None:
    inputs: set[str] = set()
    for version in project.metadata.models.versions(model):
        inputs.update(str(f["name"]) for f in version.inference_contract.get("inputs", []))
    missing = [k for k in keys if k not in inputs]
    if missing:
        raise ConfigError(
            f"data.entity_key: {', '.join(missing)} is not an input of {model}, so logged "
            "predictions do not carry it",
            problems=[("data.entity_key", f"must name inputs of {model}")],
        )


def _align_key(
    name: str, left: pa.ChunkedArray, right: pa.ChunkedArray
) -> tuple[pa.ChunkedArray, pa.ChunkedArray] | FeedbackProblem:
    """The file's and the log's values of one key column, in one type to join on."""
    if left.type == right.type:
        return left, right
    if is_temporal(right.type):
        problems: list[FeedbackProblem] = []
        times = _utc_times(name, left, problems)
        if times is None or problems:
            return problems[0]
        return times, to_utc(right)
    if pa.types.is_integer(left.type) and pa.types.is_integer(right.type):
        return pc.cast(left, pa.int64()), pc.cast(right, pa.int64())
    try:
        return pc.cast(left, pa.string()), pc.cast(right, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return FeedbackProblem(
            name, f"must be {right.type} like the logged inputs; got {left.type}"
        )


def _read(
    project: Workspace,
    model: str,
    start: datetime,
    end: datetime,
    columns: Sequence[str],
    version: int | None = None,
) -> pa.Table:
    """`read_window` with these columns; a column no row of the window has is all null."""
    from keel.predlog.read import read_window

    try:
        return read_window(project, model, start, end, version=version, columns=columns)
    except ConfigError:
        pass  # some column is in no part of the window (an empty window has none)
    table = read_window(project, model, start, end, version=version)
    for name in columns:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    return table.select(list(columns))


# --- ingesting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackResult:
    """What one ingestion did: the labels recorded, the rows skipped, the windows touched."""

    source: str | None
    join: Literal["id", "entity"]
    rows: int  # rows given
    receipt: FeedbackReceipt
    unknown: int  # rows skipped: no logged prediction (only with allow_unknown)
    unknown_ids: list[str]  # the first few, for id joins
    unknown_rows: list[int]  # the first few, 0-based
    models: dict[str, tuple[datetime, datetime]]  # the predictions labelled: oldest, newest
    times: dict[str, list[datetime]] = field(repr=False)  # of the predictions labelled

    def windows_of(self, window: timedelta) -> dict[str, list[datetime]]:
        """The starts of the windows (`align`) holding a labelled prediction, per model."""
        return {
            model: sorted({align(moment, window) for moment in moments})
            for model, moments in self.times.items()
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "join": self.join,
            "rows": self.rows,
            "recorded": self.receipt.rows,
            "new": self.receipt.new,
            "replaced": self.receipt.replaced,
            "changed": self.receipt.changed,
            "unknown": self.unknown,
            "unknown_ids": self.unknown_ids,
            "unknown_rows": [r + 1 for r in self.unknown_rows],
            "received_at": self.receipt.received_at.isoformat(),
            "received_by": self.receipt.received_by,
            "audit_events": list(self.receipt.events),
            "models": {
                name: {
                    "labels": len(self.times.get(name, [])),
                    "first_at": first.isoformat(),
                    "last_at": last.isoformat(),
                }
                for name, (first, last) in sorted(self.models.items())
            },
        }


def ingest(
    project: Workspace,
    table: pa.Table,
    *,
    model: str | None = None,
    allow_unknown: bool = False,
    actor: str | None = None,
    source: str | None = None,
) -> FeedbackResult:
    """Check, join and record labels, all or nothing.

    `DataError` for malformed rows (missing column, null or non-finite label, malformed or
    repeated id, two rows for one prediction); `ContractViolation` for rows that name no
    logged prediction (or, by entity, match none), unless `allow_unknown` skips them.
    Either way nothing is recorded. `source` (a file name) prefixes messages.
    """
    spec = project.spec.monitoring.feedback
    where = f"{source}: " if source else ""
    keys = project.spec.data.entity_key if project.spec.data is not None else []
    checked, problems = check_feedback(table, spec, keys)
    if not problems:
        resolution = resolve(project, checked, model=model)
        problems = resolution.problems
    if problems:
        raise DataError(
            f"{where}{len(problems)} problem(s) (row 1 is the first data row): {_listed(problems)}",
            path=source,
            hint="fix the rows named; nothing was recorded",
        )
    if resolution.unknown and not allow_unknown:
        raise ContractViolation(
            f"{where}{_unknown_message(resolution, spec, model, table.num_rows)}; "
            "nothing was recorded",
            hint=(
                "check that they are ids keel returned (`keel explain ID` shows one), or "
                "pass --allow-unknown to record the other rows and skip these"
                if spec.join == "id"
                else "check data.entity_key, monitoring.feedback.time_column and max_lag, or "
                "pass --allow-unknown to record the other rows and skip these"
            ),
        )
    receipt = project.metadata.feedback.record(
        resolution.rows, actor=actor or project.settings.user, via=source
    )
    return _result(source, spec, table.num_rows, receipt, resolution)


def _unknown_message(
    resolution: Resolution, spec: FeedbackSpec, model: str | None, total: int
) -> str:
    count = len(resolution.unknown)
    rows = ", ".join(str(r + 1) for r in resolution.unknown[:SHOWN])
    more = f" and {count - SHOWN:,} more" if count > SHOWN else ""
    if spec.join == "id":
        ids = ", ".join(resolution.unknown_ids[:SHOWN])
        of = f"of {model}" if model else "in the prediction log"
        return (
            f"{count:,} of {total:,} row(s) name no logged prediction {of} "
            f"({spec.id_column} {ids}{more}; row {rows})"
        )
    return (
        f"{count:,} of {total:,} row(s) match no prediction made within "
        f"{_duration(spec.max_lag)} before their {spec.time_column} (row {rows}{more})"
    )


def _duration(delta: timedelta) -> str:
    from keel.domain.duration import format_duration

    return format_duration(delta)


def _result(
    source: str | None,
    spec: FeedbackSpec,
    rows: int,
    receipt: FeedbackReceipt,
    resolution: Resolution,
) -> FeedbackResult:
    times: dict[str, list[datetime]] = {}
    for row in resolution.rows:
        times.setdefault(row.model, []).append(row.at)
    return FeedbackResult(
        source=source,
        join=spec.join,
        rows=rows,
        receipt=receipt,
        unknown=len(resolution.unknown),
        unknown_ids=resolution.unknown_ids[:SHOWN],
        unknown_rows=resolution.unknown[:SHOWN],
        models={name: (min(moments), max(moments)) for name, moments in times.items()},
        times=times,
    )


def receive(
    project: Workspace,
    document: object,
    *,
    actor: str,
    max_rows: int | None = None,
    via: str | None = None,
) -> FeedbackResult:
    """Labels sent over HTTP: `{"feedback": [{...}, ...], "model"?: str, "allow_unknown"?:
    bool}`, each record a row of a feedback file (`prediction_id` and `label` by default).
    `actor` is the caller the route authenticated; `via` (the route) goes to the audit log.

    Every problem is a `ConfigError` whose `problems` name the field as `feedback[3].label`
    (0-based, like the list), unknown ids included; nothing is recorded then.
    """
    limit = max_rows if max_rows is not None else project.spec.serving.max_rows
    body = _body(document, limit)
    records: list[object] = body["feedback"]
    model: str | None = body.get("model")
    allow_unknown: bool = body.get("allow_unknown", False)
    spec = project.spec.monitoring.feedback
    keys = project.spec.data.entity_key if project.spec.data is not None else []
    table, problems = records_table(records)
    if not problems:
        checked, problems = check_feedback(table, spec, keys)
    if not problems:
        resolution = resolve(project, checked, model=model)
        problems = resolution.problems
        if not problems and resolution.unknown and not allow_unknown:
            problems = [
                FeedbackProblem(
                    spec.id_column if spec.join == "id" else ", ".join(keys),
                    "names no logged prediction"
                    if spec.join == "id"
                    else "matches no logged prediction within max_lag before its time",
                    len(resolution.unknown),
                    tuple(resolution.unknown[:SHOWN]),
                )
            ]
    if problems:
        raise ConfigError(
            f"the feedback is invalid, nothing was recorded: {_listed(problems)} "
            "(rows count from 1)",
            problems=[pair for problem in problems for pair in problem.fields()],
        )
    receipt = project.metadata.feedback.record(resolution.rows, actor=actor, via=via)
    return _result(None, spec, len(records), receipt, resolution)


def _body(document: object, max_rows: int) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ConfigError(
            'the request body must be a JSON object {"feedback": [...]}',
            problems=[("body", "must be a JSON object")],
        )
    problems = [
        (str(name), "unknown field; expected feedback, model, allow_unknown")
        for name in document
        if name not in ("feedback", "model", "allow_unknown")
    ]
    records = document.get("feedback")
    if not isinstance(records, list) or not records:
        problems.append(("feedback", "is required: a non-empty list of records"))
    elif len(records) > max_rows:
        problems.append(("feedback", f"at most {max_rows:,} records (serving.max_rows)"))
    if not isinstance(document.get("model", ""), str):
        problems.append(("model", "must be a string"))
    if not isinstance(document.get("allow_unknown", False), bool):
        problems.append(("allow_unknown", "must be true or false"))
    if problems:
        raise ConfigError(
            f"the request body is invalid: {', '.join(name for name, _ in problems)}",
            problems=problems,
        )
    return document


# --- performance --------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowPerformance:
    """One model version's predictions in one window, how many have a label, and the metric
    over those; `value` is None, with the reason in `note`, when it cannot be told."""

    model: str
    start: datetime
    end: datetime
    version: int | None  # None: the window holds no prediction
    predictions: int
    labelled: int
    metric: str
    value: float | None
    note: str | None = None

    @property
    def coverage(self) -> float | None:
        """The share of the predictions that have a label."""
        return self.labelled / self.predictions if self.predictions else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "version": self.version,
            "predictions": self.predictions,
            "labelled": self.labelled,
            "coverage": self.coverage,
            "metric": self.metric,
            "value": self.value,
            "note": self.note,
        }


def align(moment: datetime, window: timedelta) -> datetime:
    """The start of the window holding `moment`, windows being laid end to end from the
    Unix epoch (so daily windows are UTC days)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (moment - epoch) // window * window


def performance(
    project: Workspace,
    model: str,
    *,
    start: datetime,
    end: datetime,
    window: timedelta,
    metric: str | None = None,
    version: int | None = None,
    min_labels: int = MIN_LABELS,
) -> list[WindowPerformance]:
    """Per window of `window` from `start` to `end` (the last one may be shorter), per model
    version: predictions, labelled predictions and the metric over them. Windows are read
    one at a time, so memory holds one window whatever the range."""
    if window <= timedelta(0):
        raise ConfigError("window must be positive", problems=[("window", "must be positive")])
    name = _metric(project, metric)
    try:
        import sklearn  # noqa: F401  (only probing: the metrics are scikit-learn's)
    except ImportError:
        raise DependencyMissing("scikit-learn", "sklearn", "Scoring feedback") from None
    return [
        entry
        for window_start, window_end in _windows(start, end, window)
        for entry in score_window(
            project,
            model,
            _read(project, model, window_start, window_end, _columns(), version),
            window_start,
            window_end,
            metric=name,
            version=version,
            min_labels=min_labels,
        )
    ]


def _windows(
    start: datetime, end: datetime, window: timedelta
) -> Iterator[tuple[datetime, datetime]]:
    moment = start
    while moment < end:
        yield moment, min(moment + window, end)
        moment += window


def _columns() -> list[str]:
    return ["id", "at", "version", "slot", "shadow_of", *_SCORE_COLUMNS]


def _metric(project: Workspace, metric: str | None) -> str:
    name = metric or project.spec.monitoring.feedback.metric
    if name is None:
        primary = project.spec.primary_metric
        if primary is None:
            raise ConfigError(
                "no performance metric: keel.yaml lists no metrics",
                problems=[("monitoring.feedback.metric", "set it, or list metrics")],
            )
        name = primary.name
    if name not in KNOWN_METRICS:
        raise ConfigError(
            f"metric {name!r} has no built-in implementation to score feedback with",
            problems=[
                ("monitoring.feedback.metric", f"must be one of {', '.join(sorted(KNOWN_METRICS))}")
            ],
        )
    return name


def score_window(
    project: Workspace,
    model: str,
    predictions: pa.Table,
    start: datetime,
    end: datetime,
    *,
    metric: str,
    version: int | None = None,
    min_labels: int = MIN_LABELS,
) -> list[WindowPerformance]:
    """Performance per version over one window's predictions (`read_window`'s table, with
    `id`, `version`, `shadow_of` and the outputs), joined to the labels of `[start, end)`."""
    labelled = project.metadata.feedback.window(model, start, end)
    labels = [entry.label for entry in labelled]
    keys = pa.table(
        {
            "key": pa.array([entry.prediction_id for entry in labelled], pa.string()),
            "label_index": pa.array(range(len(labelled)), pa.int64()),
        }
    )
    if version is not None:
        predictions = predictions.filter(pc.equal(predictions["version"], version))
    if not predictions.num_rows:
        note = "no predictions" if version is None else f"no predictions of v{version}"
        return [WindowPerformance(model, start, end, version, 0, 0, metric, None, note)]
    # A shadow row takes the label of the request it shadowed.
    key = pc.coalesce(predictions["shadow_of"], predictions["id"])
    table = pa.table(
        {
            "key": key,
            "version": predictions["version"],
            **{
                name: _joinable(predictions[name])
                if name in predictions.column_names
                else pa.nulls(predictions.num_rows, pa.float64())
                for name in _SCORE_COLUMNS
            },
        }
    ).join(keys, "key", join_type="left outer")
    results = []
    for number in sorted(set(table["version"].to_pylist())):
        rows = table.filter(pc.equal(table["version"], number))
        results.append(_score(model, start, end, int(number), rows, labels, metric, min_labels))
    return results


def _joinable(column: Any) -> Any:
    """`column`, typed: Arrow's joins refuse a column of type null, which is what a
    regressor's never-written `outputs.probability` reads back as."""
    return column.cast(pa.float64()) if pa.types.is_null(column.type) else column


def _score(
    model: str,
    start: datetime,
    end: datetime,
    version: int,
    rows: pa.Table,
    labels: Sequence[Label],
    metric: str,
    min_labels: int,
) -> WindowPerformance:
    total = rows.num_rows
    rows = rows.filter(pc.is_valid(rows["label_index"]))
    count = rows.num_rows
    truth = [labels[i] for i in rows["label_index"].to_pylist()]
    scores = rows["outputs.probability"]
    logged = pa.types.is_floating(scores.type) and not scores.null_count
    value, note = measure(
        [metric],
        truth,
        predictions=rows["outputs.prediction"].to_pylist(),
        scores=scores.to_pylist() if logged else None,
        min_labels=min_labels,
        version=version,
    )[metric]
    return WindowPerformance(model, start, end, version, total, count, metric, value, note)


def monitored_metrics(spec: ProjectSpec) -> list[str]:
    """The metrics measured on labelled predictions, the headline first: the one
    `monitoring.feedback.metric` names, every metric of keel.yaml, and any a performance
    trigger or alert rule names (so no trigger waits on a metric nobody measures)."""
    names = [spec.monitoring.feedback.metric, *(m.name for m in spec.metrics)]
    trigger = spec.retraining.triggers.performance
    if trigger is not None:
        names.append(trigger.metric)
    for rule in spec.monitoring.alerts or []:
        if rule.signal == "performance" and rule.subject and rule.subject in METRICS:
            names.append(rule.subject)
    return list(dict.fromkeys(name for name in names if name))


def measure(
    metrics: Sequence[str],
    truth: Sequence[Label],
    *,
    predictions: Sequence[Any],
    scores: Sequence[float] | None,
    min_labels: int = MIN_LABELS,
    version: int | None = None,
) -> dict[str, tuple[float | None, str | None]]:
    """Each metric over labelled predictions: its value, or None and why it cannot be told
    (too few labels, labels of mixed kinds, one class only, no probability logged, ...).
    `scores` is the logged probability of the positive class, None when there is none."""
    import numpy as np

    from keel.metrics import evaluate

    count = len(truth)
    kinds = sorted({_kind(value) for value in truth})
    classes = len(set(truth))
    results: dict[str, tuple[float | None, str | None]] = {}
    for name in metrics:
        definition = METRICS.get(name)
        note: str | None = None
        if definition is None:
            note = (
                f"{name} has no built-in implementation to score labels with; "
                f"monitoring measures {', '.join(sorted(METRICS))}"
            )
        elif not count:
            note = "no labels yet"
        elif count < min_labels:
            note = f"{count} labelled; at least {min_labels} are needed"
        elif len(kinds) > 1:
            note = f"the labels mix {' and '.join(kinds)}"
        elif definition.needs == "score" and scores is None:
            who = "the model" if version is None else f"v{version}"
            note = f"{name} needs the probability output, which {who} did not log"
        elif definition.two_classes and classes < 2:
            note = f"{name} needs two classes; every label is {truth[0]!r}"
        if note is not None:
            results[name] = (None, note)
            continue
        try:
            values = evaluate(
                [MetricSpec(name=name)],
                np.asarray(list(truth)),
                y_pred=np.asarray(list(predictions)),
                y_score=None if scores is None else np.asarray(list(scores), dtype="float64"),
            )
        except ConfigError as exc:
            results[name] = (None, exc.message.removeprefix("metrics: "))
            continue
        value = values[name]
        results[name] = (value, None) if math.isfinite(value) else (None, f"{name} is {value}")
    return results
