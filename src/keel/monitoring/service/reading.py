"""Reading the prediction log in slices into window states: sketches, counts and labels."""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from keel.errors import ConfigError
from keel.monitoring.service.plan import WindowPlan
from keel.monitoring.signals import WindowCounts

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.models.reference import Reference
    from keel.stats.sketch import TableSketch
    from keel.workspace import Workspace

__all__: list[str] = []


#: Longest slice of prediction time read at once (smaller for short windows).
_SLICE: Final = timedelta(hours=6)
#: Predictions a slice should hold at the log's average rate: what bounds memory.
_SLICE_ROWS: Final = 200_000
_SCORE_OUTPUTS: Final = ("outputs.probability", "outputs.prediction")


@dataclass
class _WindowState:
    start: datetime
    end: datetime
    sketch: TableSketch
    counts: WindowCounts = field(default_factory=WindowCounts)
    versions: dict[int, int] = field(default_factory=dict)
    rows: int = 0
    scores: list[Any] = field(default_factory=list)  # numpy arrays of labelled rows
    predictions: list[Any] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)


def _read_windows(
    project: Workspace,
    model: str,
    reference: Reference,
    columns: Sequence[str],
    plan: WindowPlan,
    count: int,
    since: datetime | None,
    oldest: datetime,
    newest: datetime,
) -> list[_WindowState]:
    states: dict[int, _WindowState] = {}
    read_from, event_column = _read_range(project, plan, count, since, oldest, newest)
    seen = 0
    wanted = _wanted(columns, event_column)
    for table in _slices(project, model, read_from, newest, plan, wanted):
        _add_table(project, states, table, plan, event_column, seen, reference, columns)
        seen += table.num_rows
    return _newest(states, plan, count, since)


def _read_range(
    project: Workspace,
    plan: WindowPlan,
    count: int,
    since: datetime | None,
    oldest: datetime,
    newest: datetime,
) -> tuple[datetime, str | None]:
    """Where reading starts (predictions from then to `newest` are read) and the column
    that holds the event time, for event windows."""
    read_from = oldest
    if plan.time == "prediction" and plan.duration is not None:
        end = _align(newest, plan.duration) + plan.duration
        first = since or end - plan.duration * count
        read_from = max(oldest, first)
    elif since is not None:
        read_from = max(oldest, since)
    timestamp = project.spec.data.timestamp if project.spec.data is not None else None
    if plan.time == "event" and not timestamp:
        raise ConfigError(
            "monitoring.time: event windows need data.timestamp, the event time requests carry",
            problems=[("data.timestamp", "is required when monitoring.time is event")],
        )
    return read_from, f"inputs.{timestamp}" if plan.time == "event" else None


def _wanted(columns: Sequence[str], event_column: str | None) -> list[str]:
    wanted = ["id", "at", "version", *columns]
    if event_column is not None and event_column not in wanted:
        wanted.append(event_column)
    return wanted


def _add_table(
    project: Workspace,
    states: dict[int, _WindowState],
    table: pa.Table,
    plan: WindowPlan,
    event_column: str | None,
    seen: int,
    reference: Reference,
    columns: Sequence[str],
) -> None:
    """Adds a slice of the log (`seen` rows came before it) to the windows it falls in."""
    import numpy as np
    import pyarrow as pa

    keys = _window_keys(table, plan, event_column, seen)
    for key in np.unique(keys).tolist():
        part = table.filter(pa.array(keys == key))
        state = states.get(key)
        if state is None:
            state = states[key] = _new_state(key, plan, _utc(part.column("at")[0].as_py()))
        _accumulate(project, state, part, reference, columns, by_rows=plan.rows is not None)


def _new_state(key: int, plan: WindowPlan, first_at: datetime) -> _WindowState:
    from keel.stats.sketch import TableSketch

    if plan.rows is not None:
        return _WindowState(first_at, first_at, TableSketch(columns={}, rows=0))
    assert plan.duration is not None
    start = _EPOCH + timedelta(microseconds=key)
    return _WindowState(start, start + plan.duration, TableSketch(columns={}, rows=0))


def _newest(
    states: dict[int, _WindowState], plan: WindowPlan, count: int, since: datetime | None
) -> list[_WindowState]:
    ordered = [states[k] for k in sorted(states)]
    if plan.rows is not None or plan.time == "event":
        ordered = ordered[-count:] if since is None else ordered
    return ordered


def _slices(
    project: Workspace,
    model: str,
    start: datetime,
    newest: datetime,
    plan: WindowPlan,
    columns: Sequence[str],
    *,
    segments: bool = True,
) -> Iterator[pa.Table]:
    """The log from `start` to `newest`, in slices of time holding about `_SLICE_ROWS`
    predictions each at the log's average rate, with only the columns monitoring reads
    (without `segments`, only the rows not yet compacted)."""
    from keel.predlog.read import read_window

    step = min(_SLICE, plan.duration) if plan.duration is not None else _SLICE
    stats = [s for s in project.metadata.predictions.stats() if s.model == model]
    rows = sum(s.rows + s.segment_rows for s in stats)
    oldest = min((s.first_at for s in stats if s.first_at is not None), default=start)
    seconds = (newest - oldest).total_seconds()
    if rows > _SLICE_ROWS and seconds > 0:
        step = min(step, max(timedelta(seconds=_SLICE_ROWS * seconds / rows), timedelta(seconds=1)))
    cursor = start
    stop = newest + timedelta(microseconds=1)
    while cursor < stop:
        upper = min(cursor + step, stop)
        table = read_window(
            project, model, cursor, upper, columns=columns, missing_ok=True, segments=segments
        )
        if table.num_rows:
            yield table
        cursor = upper


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _align(moment: datetime, duration: timedelta) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // duration) * duration


def _window_keys(table: pa.Table, plan: WindowPlan, event_column: str | None, seen: int) -> Any:
    """Each row's window: its start in microseconds since the epoch, or for row-count
    windows its ordinal."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    from keel.domain.times import NotATime, to_utc

    if plan.rows is not None:
        return (seen + np.arange(table.num_rows, dtype=np.int64)) // plan.rows
    assert plan.duration is not None
    column = event_column or "at"
    if column not in table.column_names:
        raise ConfigError(
            f"monitoring.time: event windows read {column}, which the logged requests lack",
            problems=[("data.timestamp", f"requests must carry {column.removeprefix('inputs.')}")],
        )
    try:
        # Dates, timestamps of any unit or zone, or logged ISO text: one instant type.
        times = to_utc(table.column(column))
    except NotATime as exc:
        raise ConfigError(
            f"monitoring.time: {column} {exc}",
            problems=[("data.timestamp", "must name a date or timestamp input")],
        ) from None
    micros = pc.cast(times, pa.int64())
    micros = pc.coalesce(micros, pc.cast(to_utc(table.column("at")), pa.int64()))
    step = int(plan.duration.total_seconds() * 1_000_000)
    values = micros.to_numpy()
    return (values // step) * step


def _utc(moment: Any) -> datetime:
    value: datetime = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _accumulate(
    project: Workspace,
    state: _WindowState,
    part: pa.Table,
    reference: Reference,
    columns: Sequence[str],
    *,
    by_rows: bool,
) -> None:
    _absorb(state, _part_state(part, _limits(reference, columns)), by_rows=by_rows)
    _join_feedback(project, state, part)


#: What a window's values are checked against, per monitored input: ("numeric", min, max)
#: or ("categories", kind, known values). Plain values, so that Spark's executors get them.
Limits = dict[str, tuple[str, Any, Any]]


def _limits(reference: Reference, columns: Sequence[str]) -> Limits:
    limits: Limits = {}
    for name in columns:
        ref = reference.sketch.columns.get(name)
        if ref is None or not name.startswith("inputs."):
            continue
        if ref.kind == "numeric" and ref.min is not None and ref.max is not None:
            limits[name] = ("numeric", ref.min, ref.max)
        elif ref.kind in ("categorical", "boolean") and ref.other == 0:
            limits[name] = ("categories", ref.kind, list(ref.categories))
    return limits


@dataclass
class _PartState:
    """One part of a window's rows summed up: what both engines compute where the rows are
    (in this process, or per Spark partition) and the driver adds into a `_WindowState`."""

    sketch: TableSketch
    rows: int
    versions: dict[int, int]
    first_at: datetime
    last_at: datetime
    counts: WindowCounts

    def merge(self, other: _PartState) -> _PartState:
        counts = WindowCounts()
        counts.add(self.counts)
        counts.add(other.counts)
        versions = dict(self.versions)
        for number, rows in other.versions.items():
            versions[number] = versions.get(number, 0) + rows
        return _PartState(
            self.sketch.merge(other.sketch),
            self.rows + other.rows,
            versions,
            min(self.first_at, other.first_at),
            max(self.last_at, other.last_at),
            counts,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sketch": self.sketch.to_json().decode("utf-8"),
            "rows": self.rows,
            "versions": [[number, rows] for number, rows in self.versions.items()],
            "first_at": self.first_at.isoformat(),
            "last_at": self.last_at.isoformat(),
            "out_of_range": self.counts.out_of_range,
            "unseen": self.counts.unseen,
            "unseen_examples": self.counts.unseen_examples,
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> _PartState:
        from keel.stats.sketch import TableSketch

        return cls(
            TableSketch.from_json(document["sketch"]),
            int(document["rows"]),
            {int(number): int(rows) for number, rows in document["versions"]},
            datetime.fromisoformat(document["first_at"]),
            datetime.fromisoformat(document["last_at"]),
            WindowCounts(
                dict(document["out_of_range"]),
                dict(document["unseen"]),
                {name: dict(seen) for name, seen in document["unseen_examples"].items()},
            ),
        )


def _part_state(part: pa.Table, limits: Limits) -> _PartState:
    """A non-empty part's sketch, counts per version, time span, and exact out-of-range and
    unseen-category counts against the reference. Pure: Spark runs it on the executors."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    from keel.stats.sketch import TableSketch

    present = [c for c in part.column_names if c.startswith(("inputs.", "outputs."))]
    times = part.column("at")
    counts = WindowCounts()
    versions: dict[int, int] = {}
    for number, rows in zip(
        *np.unique(part.column("version").to_numpy(), return_counts=True), strict=True
    ):
        versions[int(number)] = int(rows)
    for name, (kind, first, second) in limits.items():
        if name not in part.column_names:
            continue
        values = part.column(name)
        if kind == "numeric":
            try:
                low = pc.sum(pc.less(values, first)).as_py() or 0
                high = pc.sum(pc.greater(values, second)).as_py() or 0
            except Exception:  # noqa: BLE001, S112 - another type: the schema signal says so
                continue
            counts.out_of_range[name] = low + high
        else:
            text = values if first == "categorical" else pc.cast(values, "string")
            try:
                text = pc.cast(text, "string")
                unknown = pc.invert(pc.is_in(text, value_set=pa.array(second, pa.string())))
                unknown = pc.and_(unknown, pc.is_valid(text))
            except Exception:  # noqa: BLE001, S112 - see above
                continue
            count = pc.sum(unknown).as_py() or 0
            counts.unseen[name] = count
            if count:
                examples = counts.unseen_examples.setdefault(name, {})
                for item in pc.value_counts(pc.filter(text, unknown)).to_pylist()[:20]:
                    key = str(item["values"])
                    examples[key] = examples.get(key, 0) + int(item["counts"])
    return _PartState(
        TableSketch.of(part, present),
        part.num_rows,
        versions,
        _utc(pc.min(times).as_py()),
        _utc(pc.max(times).as_py()),
        counts,
    )


def _absorb(state: _WindowState, part: _PartState, *, by_rows: bool) -> None:
    state.sketch = state.sketch.merge(part.sketch) if state.sketch.columns else part.sketch
    state.rows += part.rows
    if by_rows:  # row-count windows span the times of their rows
        state.start = min(state.start, part.first_at)
        state.end = max(state.end, part.last_at)
    for number, rows in part.versions.items():
        state.versions[number] = state.versions.get(number, 0) + rows
    state.counts.add(part.counts)


def _join_feedback(project: Workspace, state: _WindowState, part: pa.Table) -> None:
    """Keep the (score, prediction, label) of the slice's rows whose labels have arrived."""
    ids = part.column("id").to_pylist()
    labels = project.metadata.feedback.labels(ids)
    if not labels:
        return
    found = _labelled(part, labels)
    if found is not None:
        _add_labelled(state, *found, labels)


def _labelled(part: pa.Table, labelled: Container[str]) -> tuple[list[str], Any, Any] | None:
    """The ids, scores and predictions of the part's rows in `labelled`; None when the part
    logs no score. Pure: Spark runs it on the executors."""
    import numpy as np

    score_column = next((c for c in _SCORE_OUTPUTS if c in part.column_names), None)
    if score_column is None:
        return None
    ids = part.column("id").to_pylist()
    index = [i for i, prediction_id in enumerate(ids) if prediction_id in labelled]
    scores = part.column(score_column).to_numpy(zero_copy_only=False)[index]
    predicted = (
        part.column("outputs.prediction").to_numpy(zero_copy_only=False)[index]
        if "outputs.prediction" in part.column_names
        else scores
    )
    if score_column != "outputs.probability":
        # No probability logged (a regressor): score metrics say so, never rank predictions.
        scores = np.full(len(index), np.nan)
    return [ids[i] for i in index], scores, predicted


def _add_labelled(
    state: _WindowState, ids: Sequence[str], scores: Any, predicted: Any, labels: Mapping[str, Any]
) -> None:
    import numpy as np

    state.scores.append(np.asarray(scores, dtype="float64"))
    state.predictions.append(np.asarray(predicted))
    # Labels keep their Python kinds, so a mix of numbers and text is reported, not coerced.
    state.labels.append(np.asarray([labels[i] for i in ids], dtype=object))
