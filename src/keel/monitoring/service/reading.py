"""Reading the prediction log in slices into window states: sketches, counts and labels."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
    import numpy as np
    import pyarrow as pa

    from keel.stats.sketch import TableSketch

    states: dict[int, _WindowState] = {}
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
    event_column = f"inputs.{timestamp}" if plan.time == "event" else None
    seen = 0
    wanted = ["id", "at", "version", *columns]
    if event_column is not None and event_column not in wanted:
        wanted.append(event_column)
    for table in _slices(project, model, read_from, newest, plan, wanted):
        keys = _window_keys(table, plan, event_column, seen)
        seen += table.num_rows
        for key in np.unique(keys).tolist():
            part = table.filter(pa.array(keys == key))
            state = states.get(key)
            if state is None:
                if plan.rows is not None:
                    first_at = _utc(part.column("at")[0].as_py())
                    state = _WindowState(first_at, first_at, TableSketch(columns={}, rows=0))
                else:
                    assert plan.duration is not None
                    start = _EPOCH + timedelta(microseconds=key)
                    state = _WindowState(
                        start, start + plan.duration, TableSketch(columns={}, rows=0)
                    )
                states[key] = state
            _accumulate(project, state, part, reference, columns, by_rows=plan.rows is not None)
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
) -> Iterator[pa.Table]:
    """The log from `start` to `newest`, in slices of time holding about `_SLICE_ROWS`
    predictions each at the log's average rate, with only the columns monitoring reads."""
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
        table = read_window(project, model, cursor, upper, columns=columns, missing_ok=True)
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
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    from keel.stats.sketch import TableSketch

    present = [c for c in part.column_names if c.startswith(("inputs.", "outputs."))]
    sketch = TableSketch.of(part, present)
    state.sketch = state.sketch.merge(sketch) if state.sketch.columns else sketch
    state.rows += part.num_rows
    if by_rows:  # row-count windows span the times of their rows
        times = part.column("at")
        state.start = min(state.start, _utc(pc.min(times).as_py()))
        state.end = max(state.end, _utc(pc.max(times).as_py()))
    for number, rows in zip(
        *np.unique(part.column("version").to_numpy(), return_counts=True), strict=True
    ):
        state.versions[int(number)] = state.versions.get(int(number), 0) + int(rows)
    # Exact out-of-range and unseen-category counts against the reference.
    for name in columns:
        ref = reference.sketch.columns.get(name)
        if ref is None or name not in part.column_names or not name.startswith("inputs."):
            continue
        values = part.column(name)
        if ref.kind == "numeric" and ref.min is not None and ref.max is not None:
            try:
                low = pc.sum(pc.less(values, ref.min)).as_py() or 0
                high = pc.sum(pc.greater(values, ref.max)).as_py() or 0
            except Exception:  # noqa: BLE001, S112 - another type: the schema signal says so
                continue
            state.counts.out_of_range[name] = state.counts.out_of_range.get(name, 0) + low + high
        elif ref.kind in ("categorical", "boolean") and ref.other == 0:
            known = list(ref.categories)
            text = values if ref.kind == "categorical" else pc.cast(values, "string")
            try:
                text = pc.cast(text, "string")
                unknown = pc.invert(pc.is_in(text, value_set=pa.array(known, pa.string())))
                unknown = pc.and_(unknown, pc.is_valid(text))
            except Exception:  # noqa: BLE001, S112 - see above
                continue
            count = pc.sum(unknown).as_py() or 0
            state.counts.unseen[name] = state.counts.unseen.get(name, 0) + count
            if count:
                examples = state.counts.unseen_examples.setdefault(name, {})
                for item in pc.value_counts(pc.filter(text, unknown)).to_pylist()[:20]:
                    key = str(item["values"])
                    examples[key] = examples.get(key, 0) + int(item["counts"])
    _join_feedback(project, state, part)


def _join_feedback(project: Workspace, state: _WindowState, part: pa.Table) -> None:
    """Keep the (score, prediction, label) of the slice's rows whose labels have arrived."""
    import numpy as np

    ids = part.column("id").to_pylist()
    labels = project.metadata.feedback.labels(ids)
    if not labels:
        return
    index = [i for i, prediction_id in enumerate(ids) if prediction_id in labels]
    score_column = next((c for c in _SCORE_OUTPUTS if c in part.column_names), None)
    if score_column is None:
        return
    scores = part.column(score_column).to_numpy(zero_copy_only=False)[index]
    predicted = (
        part.column("outputs.prediction").to_numpy(zero_copy_only=False)[index]
        if "outputs.prediction" in part.column_names
        else scores
    )
    if score_column != "outputs.probability":
        # No probability logged (a regressor): score metrics say so, never rank predictions.
        scores = np.full(len(index), np.nan)
    state.scores.append(np.asarray(scores, dtype="float64"))
    state.predictions.append(np.asarray(predicted))
    # Labels keep their Python kinds, so a mix of numbers and text is reported, not coerced.
    state.labels.append(np.asarray([labels[ids[i]] for i in index], dtype=object))
