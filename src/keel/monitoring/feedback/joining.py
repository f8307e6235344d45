"""Which logged prediction each label is about: by the id keel returned, or by entity key
and time (`monitoring.feedback.join`)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.domain.times import is_temporal, to_utc
from keel.errors import ConfigError
from keel.metadata.base import FeedbackRow, Label, LoggedKey
from keel.monitoring.feedback.checks import _add, _utc_times
from keel.monitoring.feedback.parsing import _kind
from keel.monitoring.feedback.problems import SHOWN, FeedbackProblem
from keel.monitoring.feedback.windows import _read, align
from keel.spec import FeedbackSpec

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["Resolution", "default_model", "resolve"]


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
