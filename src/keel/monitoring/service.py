"""`keel monitor`: windows of logged predictions against the reference, in bounded memory.

    report = monitor(project, model="flights-delay", window=timedelta(days=1))

The log is read in slices (never all at once); each slice's rows go to their window, whose
state is a mergeable sketch plus exact counts and the labelled (score, label) pairs joined
from feedback. So 10 million predictions cost the memory of one slice and one sketch per
window. Windows are cut by prediction time, by the event time the requests carry
(`monitoring.time: event`, for replays and backfills), or every N predictions.

Then, per window: drift of every feature and output against the reference
(`keel.stats.drift.compare_sketches`), schema, null-rate, range and category signals,
volume against the previous windows, performance over the labelled rows. Freshness is
measured at `now`. Signals are stored (`monitor_metrics`), and the alert rules raise and
resolve alerts (`keel.monitoring.alerts`).
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from keel.domain.monitoring import MonitorMetric, Signal
from keel.errors import ConfigError, NotFound
from keel.monitoring.alerts import JudgedWindow, effective_rules, evaluate_rules
from keel.monitoring.model import MonitorReport, WindowResult
from keel.monitoring.signals import WindowCounts, window_signals

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.domain.dataset import DatasetVersion
    from keel.domain.model import ModelVersion
    from keel.models.reference import Reference
    from keel.spec import SqlSource
    from keel.stats.sketch import TableSketch
    from keel.workspace import Workspace

__all__ = ["DEFAULT_WINDOWS", "WindowPlan", "monitor", "parse_window"]

_log = logging.getLogger(__name__)

#: How many windows `keel monitor` looks back over by default.
DEFAULT_WINDOWS: Final = 14
#: Longest slice of prediction time read at once (smaller for short windows).
_SLICE: Final = timedelta(hours=6)
#: Predictions a slice should hold at the log's average rate: what bounds memory.
_SLICE_ROWS: Final = 200_000
_SCORE_OUTPUTS: Final = ("outputs.probability", "outputs.prediction")


@dataclass(frozen=True)
class WindowPlan:
    """How windows are cut: a duration (by prediction or event time) or a row count."""

    duration: timedelta | None = None
    rows: int | None = None
    time: str = "prediction"  # "prediction" or "event"

    def describe(self) -> str:
        if self.rows is not None:
            return f"every {self.rows:,} predictions"
        assert self.duration is not None
        return f"{_duration(self.duration)} by {self.time} time"


def parse_window(text: str, *, time: str = "prediction") -> WindowPlan:
    """`1h`, `1d`, `15m` (a duration) or `5000` (that many predictions per window)."""
    from keel.domain.duration import parse_duration

    value = text.strip()
    if value.isdigit():
        if int(value) < 1:
            raise ConfigError(
                "--window: must be positive", problems=[("--window", "must be positive")]
            )
        return WindowPlan(rows=int(value), time=time)
    try:
        duration = parse_duration(value)
    except ValueError as exc:
        raise ConfigError(
            f"--window: {exc}",
            problems=[("--window", "a duration such as 1h or 1d, or a number of predictions")],
        ) from exc
    if duration <= timedelta(0):
        raise ConfigError("--window: must be positive", problems=[("--window", "must be > 0")])
    return WindowPlan(duration=duration, time=time)


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


def monitor(
    project: Workspace,
    *,
    model: str | None = None,
    plan: WindowPlan | None = None,
    windows: int = DEFAULT_WINDOWS,
    since: datetime | None = None,
    now: datetime | None = None,
    version: int | None = None,
    record: bool = True,
    actor: str | None = None,
) -> MonitorReport:
    """Monitor `model` over its last `windows` windows (or since `since`) and, with
    `record`, store the signals and raise or resolve alerts."""
    from keel.models.reference import reference_for

    spec = project.spec
    name = model or spec.name
    plan = plan or WindowPlan(duration=spec.monitoring.window, time=spec.monitoring.time)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    reference_version = _reference_version(project, name, version)
    reference = reference_for(project, reference_version)
    columns = [*reference.features, *reference.outputs]
    log_stats = [s for s in project.metadata.predictions.stats() if s.model == name]
    newest = max((s.last_at for s in log_stats if s.last_at is not None), default=None)
    oldest = min((s.first_at for s in log_stats if s.first_at is not None), default=None)

    states: list[_WindowState] = []
    if newest is not None and oldest is not None:
        states = _read_windows(
            project, name, reference, columns, plan, windows, since, oldest, newest
        )
    results = _judge(project, reference, columns, states, plan, moment)
    skew = spec.data is not None and spec.data.entity_key and spec.monitoring.skew
    if results and results[-1].judged and skew:
        results[-1] = _with_skew(project, name, reference_version.version, results[-1])
    freshness = _freshness(project, name, newest, moment)
    report = MonitorReport(
        model=name,
        version=reference_version.version,
        reference=reference.sketch,
        reference_source=reference.profile.source,
        window=plan.describe(),
        windows=results,
        freshness=freshness,
        generated_at=datetime.now(UTC),
    )
    if not record:
        return report
    who = actor or project.settings.user
    head, _ = project.metadata.audit.head()
    _record(project, name, reference_version.version, results, freshness, moment)
    # A window too small to judge still speaks for its volume (nothing else).
    judged = [
        JudgedWindow(w.end, w.signals if w.judged else [s for s in w.signals if s.name == "volume"])
        for w in results
    ]
    judged = [window for window in judged if window.signals]
    if judged:
        last = judged[-1]
        judged[-1] = JudgedWindow(last.end, [*last.signals, *freshness])
    else:
        judged = [JudgedWindow(moment, freshness)]
    changes = evaluate_rules(
        project,
        name,
        effective_rules(spec),
        judged,
        version=reference_version.version,
        now=moment if plan.time == "prediction" else datetime.now(UTC),
        actor=who,
    )
    if changes.opened or changes.resolved:
        from keel.events import notify

        notify(project, project.metadata.audit.events(after=head))
    return dataclasses.replace(
        report,
        opened=changes.opened,
        resolved=changes.resolved,
        open_alerts=project.metadata.monitoring.alerts(model=name, state="open"),
    )


def _reference_version(project: Workspace, model: str, version: int | None) -> ModelVersion:
    registry = project.metadata.models
    if version is not None:
        return registry.get(model, version)
    holder = project.metadata.releases.holder(model, "production")
    if holder is not None:
        return registry.get(model, holder)
    versions = registry.versions(model)
    if not versions:
        raise NotFound(f"model {model!r} has no versions", hint="run `keel train` first")
    return versions[-1]


# --- reading windows ---------------------------------------------------------------------------


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


# --- judging -----------------------------------------------------------------------------------


def _judge(
    project: Workspace,
    reference: Reference,
    columns: Sequence[str],
    states: Sequence[_WindowState],
    plan: WindowPlan,
    now: datetime,
) -> list[WindowResult]:
    from keel.stats.drift import compare_sketches

    spec = project.spec.monitoring
    test = None if spec.drift.test == "auto" else spec.drift.test
    results: list[WindowResult] = []
    volumes: list[int] = []
    for index, state in enumerate(states):
        # A window still filling (or the log's last, cut short) would read as a traffic
        # drop against full ones: its volume is judged once it is complete.
        partial = _partial(state, plan, now, last=index == len(states) - 1)
        volume = None
        if len(volumes) >= 3 and not partial:
            median = statistics.median(volumes[-7:])
            ratio = state.rows / median if median else None
            volume = Signal(
                "volume", "", ratio, False, None, {"rows": state.rows, "median": median}
            )
        if state.rows < spec.min_rows:
            # Too few rows to judge what they hold, but a complete window's count is a
            # signal of its own: traffic that collapses lands here. It never becomes part
            # of the baseline it is judged against.
            results.append(_not_judged(state, spec.min_rows, volume, partial=partial))
            continue
        present = [c for c in columns if c in state.sketch.columns]
        drift = compare_sketches(
            reference.sketch,
            state.sketch,
            test=test,
            threshold=spec.drift.threshold,
            columns=present,
        )
        signals = window_signals(
            reference.sketch, state.sketch, drift, state.counts, columns=columns
        )
        signals.append(Signal("predictions", "", float(state.rows)))
        if volume is not None:
            signals.append(volume)
        if not partial:
            volumes.append(state.rows)
        measured, labelled = _performance(project, state)
        coverage = labelled / state.rows if state.rows else None
        signals.append(Signal("label_coverage", "", coverage, False, None, {"labelled": labelled}))
        for name, (measured_value, note) in measured.items():
            detail = {"labelled": labelled, **({"note": note} if note else {})}
            signals.append(Signal("performance", name, measured_value, False, None, detail))
        metric = next(iter(measured), None)
        value = None if metric is None else measured[metric][0]
        results.append(
            WindowResult(
                start=state.start,
                end=state.end,
                rows=state.rows,
                versions=dict(state.versions),
                sketch=state.sketch,
                drift=drift,
                signals=signals,
                metric=metric,
                performance=value,
                labelled=labelled,
                coverage=coverage,
                partial=partial,
            )
        )
    return results


def _not_judged(
    state: _WindowState, min_rows: int, volume: Signal | None, *, partial: bool
) -> WindowResult:
    """A window too small to judge: its counts, its volume when it is complete, and a
    `not_judged` signal saying why (so stored history, the UI and `/metrics` know nothing
    else was measured)."""
    note = f"not judged: {state.rows:,} rows, fewer than min_rows {min_rows:,}"
    labelled = sum(len(labels) for labels in state.labels)
    coverage = labelled / state.rows if state.rows else None
    signals = [
        Signal("predictions", "", float(state.rows)),
        Signal("label_coverage", "", coverage, False, None, {"labelled": labelled}),
        Signal(
            "not_judged",
            "",
            float(state.rows),
            False,
            float(min_rows),
            {"rows": state.rows, "min_rows": min_rows, "note": note},
        ),
        *([volume] if volume is not None else []),
    ]
    return WindowResult(
        start=state.start,
        end=state.end,
        rows=state.rows,
        versions=dict(state.versions),
        sketch=state.sketch,
        drift=[],
        signals=signals,
        labelled=labelled,
        coverage=coverage,
        partial=partial,
        not_judged=note,
    )


def _partial(state: _WindowState, plan: WindowPlan, now: datetime, *, last: bool) -> bool:
    """Whether the window may still gain rows: the last of a row count short of it, one
    by prediction time that has not ended, the newest by event time (late events)."""
    if plan.rows is not None:
        return last and state.rows < plan.rows
    if plan.time == "event":
        return last
    return state.end > now


def _performance(
    project: Workspace, state: _WindowState
) -> tuple[dict[str, tuple[float | None, str | None]], int]:
    """Every monitored metric over the window's labelled predictions (the headline first),
    each with its value or why it has none, and how many predictions are labelled."""
    import numpy as np

    from keel.monitoring.feedback import measure, monitored_metrics

    names = monitored_metrics(project.spec)
    if not state.labels:
        return {name: (None, "no labels yet") for name in names}, 0
    labels = np.concatenate(state.labels).tolist()
    scores = np.concatenate(state.scores)
    predictions = np.concatenate(state.predictions).tolist()
    logged = bool(scores.size) and bool(np.isfinite(scores).all())
    measured = measure(
        names,
        labels,
        predictions=predictions,
        scores=scores.tolist() if logged else None,
        min_labels=1,
    )
    return measured, len(labels)


# --- training-serving skew ---------------------------------------------------------------------

#: Share of rows whose online feature may differ from the offline recomputation.
ROW_SKEW_LIMIT: Final = 0.01


def _with_skew(project: Workspace, model: str, version: int, window: WindowResult) -> WindowResult:
    """The newest window with its skew signals: row-level against the newest snapshot of
    the data source (which holds the rows production scored, once they land), and the
    distribution of served features against training's."""
    from keel.errors import KeelError
    from keel.monitoring.signals import drift_value
    from keel.monitoring.skew import skew_report

    newest = project.metadata.datasets.list(limit=1)
    try:
        report = skew_report(
            project,
            model,
            start=window.start,
            end=window.end + timedelta(microseconds=1),
            version=version,
            source=str(newest[0].id) if newest else None,
        )
    except KeelError as exc:
        _log.info("no skew measured for the window ending %s: %s", window.end, exc.message)
        return window
    signals = list(window.signals)
    for feature in report.row.features:
        rate = feature.mismatch_rate
        if rate is None:
            continue
        signals.append(
            Signal(
                "row_skew",
                feature.feature,
                rate,
                rate > ROW_SKEW_LIMIT,
                ROW_SKEW_LIMIT,
                {"compared": feature.compared, "mismatches": feature.mismatches},
            )
        )
    for result in report.distribution:
        signals.append(
            Signal(
                "distribution_skew",
                result.column,
                drift_value(result),
                result.drifted,
                result.threshold,
                {"test": result.test, "p_value": result.p_value},
            )
        )
    return dataclasses.replace(window, signals=signals)


# --- freshness ---------------------------------------------------------------------------------


def _freshness(
    project: Workspace, model: str, newest: datetime | None, now: datetime
) -> list[Signal]:
    spec = project.spec.monitoring.freshness
    signals: list[Signal] = []
    if newest is not None:
        age = max((now - newest).total_seconds(), 0.0)
        limit = spec.predictions.total_seconds() if spec.predictions is not None else None
        signals.append(
            Signal(
                "prediction_age",
                "",
                age,
                limit is not None and age > limit,
                limit,
                {"newest": newest.isoformat()},
            )
        )
    received = project.metadata.feedback.newest(model)
    if received is not None:
        age = max((now - received).total_seconds(), 0.0)
        limit = spec.feedback.total_seconds() if spec.feedback is not None else None
        signals.append(
            Signal(
                "feedback_age",
                "",
                age,
                limit is not None and age > limit,
                limit,
                {"newest": received.isoformat()},
            )
        )
    if spec.data is not False:
        signal = _data_age(project, now)
        if signal is not None:
            signals.append(signal)
    return signals


def _data_age(project: Workspace, now: datetime) -> Signal | None:
    """How old the data is, from the best time it has: the newest value of its timestamp
    column (held to the contract's freshness), else the source's own time, a file's
    modification time or a SQL source's newest snapshot (held to `freshness.data` as a
    duration). The signal says which (`measured_from`)."""
    from keel.contracts import read_contract
    from keel.domain.times import covers_until, kind_named

    data = project.spec.data
    if data is None:
        return None
    versions = project.metadata.datasets.list(limit=1)
    newest_version = versions[0] if versions else None
    limit = project.spec.monitoring.freshness.data_limit
    detail: dict[str, Any] = {}
    if newest_version is not None and newest_version.time_range is not None:
        newest = newest_version.time_range.end
        column = newest_version.time_range.column
        if kind_named(dict(newest_version.columns).get(column, "")) == "date":
            newest = covers_until(newest.date())  # the newest day counts until its end
        detail["measured_from"] = f"the newest {column} value"
        if data.contract:
            try:
                contract = read_contract(project.settings.project_dir / data.contract)
            except Exception:  # noqa: BLE001 - `keel contract check` reports a broken contract
                contract = None
            if contract is not None and contract.timestamp is not None:
                limit = contract.timestamp.freshness
    else:
        found = _source_time(project, data.source, newest_version)
        if found is None:
            return None
        newest, detail["measured_from"] = found
    if newest_version is not None:
        detail["dataset"] = str(newest_version.id)
    age = max((now - newest).total_seconds(), 0.0)
    seconds = None if limit is None else limit.total_seconds()
    return Signal(
        "data_age",
        "",
        age,
        seconds is not None and age > seconds,
        seconds,
        {"newest": newest.isoformat(), **detail},
    )


def _source_time(
    project: Workspace, source: str | SqlSource, newest: DatasetVersion | None
) -> tuple[datetime, str] | None:
    """When data without a time column last changed: its files' newest modification time,
    or, for a SQL source (or files no longer there), the newest snapshot's time."""
    from keel.data.read import resolve_source
    from keel.errors import DataError

    if isinstance(source, str):
        path = Path(source).expanduser()
        where = path if path.is_absolute() else project.settings.project_dir / path
        try:
            files = resolve_source(where)
            modified = max(f.stat().st_mtime for f in files)
        except (DataError, OSError) as exc:
            _log.info("data source %s: no modification time (%s)", source, exc)
        else:
            return datetime.fromtimestamp(modified, UTC), "the source file's modification time"
    if newest is None:
        return None
    kind = "SQL source" if not isinstance(source, str) else "dataset"
    return newest.created_at.astimezone(UTC), f"the {kind}'s newest snapshot time"


# --- recording ---------------------------------------------------------------------------------


def _record(
    project: Workspace,
    model: str,
    version: int,
    windows: Sequence[WindowResult],
    freshness: Sequence[Signal],
    now: datetime,
) -> None:
    """Store every window's signals, and freshness as a window of no length at `now`."""
    spans = [(w.start, w.end, w.signals) for w in windows] + [(now, now, freshness)]
    project.metadata.monitoring.record_metrics(
        [
            MonitorMetric(
                model=model,
                version=version,
                window_start=start,
                window_end=end,
                signal=s.name,
                subject=s.subject,
                value=s.value,
                detail={**s.detail, "breached": s.breached, "limit": s.limit},
            )
            for start, end, signals in spans
            for s in signals
        ]
    )


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
