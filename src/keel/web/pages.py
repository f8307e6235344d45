"""What each UI page shows: one function per page, reading the stores and returning the
template and its context. Functions run in the thread pool (store calls block); keel's errors
become error pages in `keel.web.ui`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final

from markupsafe import Markup
from starlette.requests import Request

from keel.domain.model import VERSION_RULE, parse_version_number
from keel.domain.monitoring import SEVERITIES, MonitorMetric
from keel.errors import KeelError, NotFound

if TYPE_CHECKING:
    from keel.domain.audit import AuditEvent
    from keel.spec import ProjectSpec
    from keel.stats.drift import DriftResult
    from keel.workspace import Workspace

__all__ = [
    "ALIAS_ORDER",
    "Context",
    "alerts_page",
    "flat_pairs",
    "fmt_number",
    "fmt_when",
    "home",
    "model_page",
    "monitoring_page",
    "prediction_page",
    "request_page",
    "requests_page",
    "retraining_decision",
    "scorecard_page",
    "version_page",
]

#: Aliases in the order an operator reads them; others follow by name.
ALIAS_ORDER: Final = ("production", "canary", "candidate", "shadow")
#: Audit events that move an alias: the release history.
RELEASE_EVENTS: Final = [
    "model.registered",
    "alias.moved",
    "alias.rolled_back",
    "alias.removed",
    "canary.promoted",
    "canary.rolled_back",
    "release.requested",
    "release.approved",
    "release.rejected",
    "retraining.decided",
]
#: Alerts one page lists at most.
MAX_ALERTS: Final = 500
#: Release history entries the model page lists at most (newest first).
MAX_HISTORY: Final = 100
#: The signals the home page reads: performance, and two every monitor run records.
HOME_SIGNALS: Final = ("performance", "predictions", "prediction_age")
#: Versions the model page lists at once (newest first; "older" pages on).
VERSIONS_PER_PAGE: Final = 50
#: Closed requests the requests page lists (newest first).
MAX_CLOSED: Final = 50
#: Monitoring windows the charts draw (the newest).
MAX_WINDOWS: Final = 48
#: Features whose reference and current distributions the monitoring page draws.
MAX_DISTRIBUTIONS: Final = 12

_DECIDED: Final = "retraining.decided"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DAY: Final = timedelta(days=1)

_SEVERITY_RANK: Final = {severity: i for i, severity in enumerate(SEVERITIES)}

Context = dict[str, Any]

logger = logging.getLogger(__name__)


# --- formatting ---------------------------------------------------------------------------


def fmt_when(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_number(value: object, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def _alias_key(alias: str) -> tuple[int, str]:
    order = ALIAS_ORDER.index(alias) if alias in ALIAS_ORDER else len(ALIAS_ORDER)
    return order, alias


def _version_number(text: str) -> int:
    number = parse_version_number(text)
    if number is None:
        raise NotFound(
            f"{text!r} is not a version number: expected {VERSION_RULE}",
            hint="versions are 1, 2, 3, ...",
        )
    return number


# --- pages --------------------------------------------------------------------------------


def home(project: Workspace, request: Request) -> tuple[str, Context]:
    from keel.monitoring.feedback import monitored_metrics

    metadata = project.metadata
    open_alerts = metadata.monitoring.alerts(state="open", limit=MAX_ALERTS)
    by_model: dict[str, Counter[str]] = {}
    for alert in open_alerts:
        by_model.setdefault(alert.model, Counter())[alert.severity] += 1
    # Only what the page shows: the newest performance, and when monitoring last ran.
    latest = metadata.monitoring.latest_metrics(signals=HOME_SIGNALS)
    pending = Counter(r.model for r in metadata.releases.requests(status="pending"))
    headline = next(iter(monitored_metrics(project.spec)), None)
    models = []
    for model in metadata.models.list_models():
        mine = [m for m in latest if m.model == model.name]
        production = next((a.version for a in model.aliases if a.name == "production"), None)
        performance = [m for m in mine if m.signal == "performance" and m.value is not None]
        # The headline metric, of the production holder first; another version's, named as
        # such, else (every monitored metric is stored, one signal each).
        performance.sort(
            key=lambda m: (m.subject == headline, m.version == production, m.window_end)
        )
        counts = by_model.get(model.name, Counter())
        # Alerts come newest first: the newest of the most severe.
        worst = max(
            (a for a in open_alerts if a.model == model.name),
            key=lambda a: _SEVERITY_RANK[a.severity],
            default=None,
        )
        models.append(
            {
                "name": model.name,
                "latest_version": model.latest_version,
                "versions": model.version_count,
                "aliases": sorted(
                    ((a.name, a.version) for a in model.aliases), key=lambda p: _alias_key(p[0])
                ),
                "alerts": [(s, counts[s]) for s in reversed(SEVERITIES) if counts[s]],
                "last_monitored": max(
                    (m.recorded_at for m in mine if m.recorded_at is not None), default=None
                ),
                "performance": performance[-1] if performance else None,
                "production": production,
                "worst_alert": worst,
                "pending": pending[model.name],
            }
        )
    context = {"models": models, "open_alerts": len(open_alerts), "pending": sum(pending.values())}
    return "home.html", context


def model_page(project: Workspace, request: Request) -> tuple[str, Context]:
    name = request.path_params["name"]
    before_text = request.query_params.get("before")
    before = None if before_text is None else _version_number(before_text)
    metadata = project.metadata
    # One page of versions, newest first, and whether older ones follow.
    versions = metadata.models.versions(name, before=before, limit=VERSIONS_PER_PAGE + 1)
    older = versions[VERSIONS_PER_PAGE - 1].version if len(versions) > VERSIONS_PER_PAGE else None
    versions = versions[:VERSIONS_PER_PAGE]
    aliases = sorted(metadata.models.aliases(name), key=lambda a: _alias_key(a.name))
    held: dict[int, list[str]] = {}
    for alias in aliases:
        held.setdefault(alias.version, []).append(alias.name)
    since = _recent_windows(project, name)
    performance = metadata.monitoring.metrics(name, signal="performance", since=since)
    chart: Markup | None = None
    legend: list[tuple[str, str]] = []
    note = ""
    if performance:
        coverage = {
            (m.window_start, m.window_end): m.value
            for m in metadata.monitoring.metrics(name, signal="label_coverage", since=since)
        }
        chart, legend, note = _performance_chart(performance, coverage, project.spec)
    history = metadata.audit.events(
        model=name, kinds=RELEASE_EVENTS, newest_first=True, limit=MAX_HISTORY
    )
    return "model.html", {
        "name": name,
        "aliases": aliases,
        "versions": [(v, held.get(v.version, [])) for v in versions],
        "older": older,
        "paged": before is not None,
        "metric_names": sorted({key for v in versions for key in v.metrics}),
        "history": history,
        "decisions": {e.seq: retraining_decision(e) for e in history if e.kind == _DECIDED},
        "pending": metadata.releases.requests(status="pending", model=name),
        "performance_chart": chart,
        "legend": legend,
        "chart_note": note,
    }


def version_page(project: Workspace, request: Request) -> tuple[str, Context]:
    from keel.lineage.chain import model_lineage

    name = request.path_params["name"]
    number = _version_number(request.path_params["version"])
    metadata = project.metadata
    version = metadata.models.get(name, number)
    chain = model_lineage(project, version.ref)
    evaluations = metadata.audit.events(model=name, kinds=["gates.evaluated"], newest_first=True)
    latest = next((e for e in evaluations if e.version == number), None)
    gates = (
        []
        if latest is None or latest.subject is None
        else (metadata.releases.evaluation(latest.subject))
    )
    return "version.html", {
        "name": name,
        "version": version,
        "chain": chain,
        "evaluation": latest,
        "gates": gates,
    }


def prediction_page(project: Workspace, request: Request) -> tuple[str, Context]:
    from keel.verbs.explain import explain

    wanted = request.query_params.get("id", "").strip()
    if not wanted:
        return "prediction.html", {"wanted": "", "chain": None}
    chain = explain(project, wanted).to_dict()
    return "prediction.html", {"wanted": wanted, "chain": chain, "rows": _flatten(chain)}


def alerts_page(project: Workspace, request: Request) -> tuple[str, Context]:
    open_alerts = project.metadata.monitoring.alerts(state="open", limit=MAX_ALERTS)
    rank = {severity: i for i, severity in enumerate(reversed(SEVERITIES))}
    open_alerts.sort(key=lambda a: (rank.get(a.severity, 9), a.model, a.opened_at))
    return "alerts.html", {"alerts": open_alerts}


def flat_pairs(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Nested evidence as sorted (dotted key, value) pairs, numbers formatted."""
    return sorted(
        (key, fmt_number(float(value)) if _is_number(value) else value)
        for key, value in _flatten(document)
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return "." in text


def _flatten(document: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A nested document as (dotted key, value) rows, lists of scalars joined."""
    rows: list[tuple[str, str]] = []
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, path + "."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for i, item in enumerate(value):
                rows.extend(_flatten(item, f"{path}[{i}]."))
        elif isinstance(value, list):
            rows.append((path, ", ".join(str(v) for v in value) or "–"))
        else:
            rows.append((path, "–" if value is None else str(value)))
    return rows


def requests_page(project: Workspace, request: Request) -> tuple[str, Context]:
    from keel.verbs.requests import requests

    pending = requests(project, status="pending").requests
    newest = requests(project, limit=MAX_CLOSED + len(pending)).requests
    closed = [r for r in newest if r.status != "pending"]
    return "requests.html", {"pending": pending, "closed": closed[:MAX_CLOSED]}


def request_page(project: Workspace, request: Request) -> tuple[str, Context]:
    from keel.verbs.requests import request as release_request

    shown = release_request(project, request.path_params["id"])  # NotFound for an unknown id
    done = request.query_params.get("done")
    return "request.html", {
        "r": shown.request,
        "gates": shown.gates,
        "now": datetime.now(UTC),
        "done": done if done in ("approved", "rejected") else None,
    }


def monitoring_page(project: Workspace, request: Request) -> tuple[str, Context]:
    """Drift by feature over the newest windows, performance over time, and the reference
    against the newest window's distribution of the features that drift most."""
    from keel.monitoring.report import drift_heatmap, short_name
    from keel.monitoring.signals import drift_result

    name = request.path_params["name"]
    metadata = project.metadata
    metadata.models.versions(name, limit=1)  # NotFound for an unknown model
    since = _recent_windows(project, name)
    drift = metadata.monitoring.metrics(name, signal="drift", since=since)
    drift += metadata.monitoring.metrics(name, signal="score_drift", since=since)
    performance = metadata.monitoring.metrics(name, signal="performance", since=since)
    coverage = {
        (m.window_start, m.window_end): m.value
        for m in metadata.monitoring.metrics(name, signal="label_coverage", since=since)
    }
    windows = _of_newest_kind(sorted({(m.window_start, m.window_end) for m in drift}))
    windows = windows[-MAX_WINDOWS:]
    context: Context = {"name": name, "heatmap": None, "performance": None, "distributions": []}
    # Windows too small to judge hold no drift: the headline says so when they are newest.
    skipped = metadata.monitoring.metrics(name, signal="not_judged", since=since)
    newest_judged = windows[-1][1] if windows else None
    later = [m for m in skipped if newest_judged is None or m.window_end > newest_judged]
    if later:
        small = max(later, key=lambda m: m.window_end)
        context["not_judged"] = (
            small.window_start,
            small.window_end,
            str(small.detail.get("note") or "not judged"),
        )
    if windows:
        column = {window: j for j, window in enumerate(windows)}
        results: list[list[DriftResult]] = [[] for _ in windows]
        for metric in drift:
            j = column.get((metric.window_start, metric.window_end))
            if j is not None:
                results[j].append(drift_result(metric))
        svg, names = drift_heatmap(results, _window_labels(windows))
        context["heatmap"] = Markup(svg)  # noqa: S704 - drift_heatmap escapes what it draws
        newest = {r.column for r in results[-1] if r.drifted}
        context["drifted"] = [short_name(n) for n in names if n in newest]
        context["latest_window"] = windows[-1]
        context["distributions"] = _distributions(project, name, windows[-1], names)
    if performance:
        chart, legend, note = _performance_chart(performance, coverage, project.spec)
        context.update(performance=chart, legend=legend, chart_note=note)
        context["performance_latest"] = _of_headline(performance, project.spec)[-1]
    return "monitoring.html", context


def scorecard_page(project: Workspace, request: Request) -> tuple[str, Context]:
    from keel.verbs.scorecard import scorecard

    card = scorecard(project).card
    areas: dict[str, list[Any]] = {}
    for item in card.items:
        areas.setdefault(item.area, []).append(item)
    return "scorecard.html", {"card": card, "areas": areas}


# --- monitoring helpers -------------------------------------------------------------------


def _recent_windows(project: Workspace, name: str) -> datetime | None:
    """The bound (`since`) that keeps the newest `MAX_WINDOWS` monitored windows."""
    ends = project.metadata.monitoring.window_ends(name, limit=MAX_WINDOWS + 1)
    return ends[-1] if len(ends) > MAX_WINDOWS else None


def _window_labels(windows: Sequence[tuple[datetime, datetime]]) -> list[str]:
    """The windows' starts as axis labels: the date alone when every window is whole days
    from midnight, else to the minute, or to the second (the time alone within one day)
    when that is needed to tell windows of rows apart."""
    starts = [start.astimezone(UTC) for start, _ in windows]
    days = all(
        start.time() == time(0) and (end - begin) % _DAY == timedelta(0) and end > begin
        for start, (begin, end) in zip(starts, windows, strict=True)
    )
    if days:
        layout = "%Y-%m-%d" if len({s.year for s in starts}) > 1 else "%m-%d"
        return [start.strftime(layout) for start in starts]
    labels = [start.strftime("%m-%d %H:%M") for start in starts]
    if len(set(labels)) < len(labels):
        # Short enough for a heatmap's column: the date only when the windows span days.
        one_day = len({start.date() for start in starts}) == 1
        labels = [start.strftime("%H:%M:%S" if one_day else "%m-%d %H:%M:%S") for start in starts]
    return labels


def _kind(window: tuple[datetime, datetime]) -> timedelta | None:
    """A window's length when it was cut by duration (its start is a whole number of its
    lengths from the epoch, as `keel monitor` lays them), None for a window of N rows."""
    start, end = window
    length = end - start
    if length < timedelta(seconds=1) or length % timedelta(seconds=1):
        return None
    return length if (start - _EPOCH) % length == timedelta(0) else None


def _of_newest_kind(
    windows: Sequence[tuple[datetime, datetime]],
) -> list[tuple[datetime, datetime]]:
    """The windows of the same kind as the newest (the same duration, or all windows of
    rows): runs with another `--window` would otherwise share one axis and one line."""
    if not windows:
        return []
    wanted = _kind(max(windows, key=lambda w: w[1]))
    return [w for w in windows if _kind(w) == wanted]


def _describe_kind(length: timedelta | None) -> str:
    if length is None:
        return "One point per window of a number of predictions, at its first prediction"
    seconds = int(length.total_seconds())
    unit = next(
        (
            f"{seconds // size}{u}"
            for u, size in (("d", 86400), ("h", 3600), ("m", 60))
            if not seconds % size
        ),
        f"{seconds}s",
    )
    return f"One point per {unit} window, at its start"


def _of_headline(performance: Sequence[MonitorMetric], spec: ProjectSpec) -> list[MonitorMetric]:
    """The stored performance of the headline metric (monitoring stores every monitored
    metric, one signal each): the first of `monitored_metrics` that was measured."""
    from keel.monitoring.feedback import monitored_metrics

    measured = {m.subject for m in performance}
    headline = next((n for n in monitored_metrics(spec) if n in measured), None)
    return [m for m in performance if headline is None or m.subject == headline]


def _performance_chart(
    performance: Sequence[MonitorMetric],
    coverage: Mapping[tuple[datetime, datetime], float | None],
    spec: ProjectSpec,
) -> tuple[Markup, list[tuple[str, str]], str]:
    """One line per version over the newest windows of one length, label coverage as bars
    behind (none when nothing is labelled); the legend, (name, colour) per line; and a note
    naming the windows' length and those of other lengths left out."""
    from keel.domain.metric import direction_of, direction_words
    from keel.monitoring.charts import LineSeries, line_chart, palette

    # Draw the headline metric, saying which way is better (an rmse that climbs is a model
    # getting worse).
    performance = _of_headline(performance, spec)
    metric = performance[-1].subject or "performance"
    higher = direction_of(metric, spec.metrics)
    axis = metric if higher is None else f"{metric} ({direction_words(higher)})"
    every = sorted({(m.window_start, m.window_end) for m in performance})
    windows = _of_newest_kind(every)[-MAX_WINDOWS:]
    column = {window: j for j, window in enumerate(windows)}
    lines: dict[int, list[float | None]] = {}
    for m in performance:
        j = column.get((m.window_start, m.window_end))
        if j is not None:
            lines.setdefault(m.version, [None] * len(windows))[j] = m.value
    series = [
        LineSeries(f"v{version} {metric}", values, palette(i))
        for i, (version, values) in enumerate(sorted(lines.items()))
    ]
    bars = [coverage.get(window) for window in windows]
    drawn = any(share is not None for share in bars)
    chart = line_chart(
        _window_labels(windows),
        series,
        bars=bars if drawn else None,
        bars_label="label coverage",
        y_label=axis,
        label=f"{axis} per window, one line per version"
        + (", and label coverage" if drawn else ""),
    )
    legend = [(line.name, line.colour) for line in series]
    other = len(every) - len(_of_newest_kind(every))
    note = _describe_kind(_kind(windows[-1]))
    if other:
        note += f"; {other} window(s) of other lengths not drawn"
    return Markup(chart), legend, note  # noqa: S704 - line_chart escapes every text it draws


def retraining_decision(event: AuditEvent) -> str:
    """A `retraining.decided` event in one line: the decision and the scores behind it."""
    evidence = event.evidence
    text = f"decision: {evidence.get('decision', 'unknown')}"
    comparison = evidence.get("comparison")
    if isinstance(comparison, Mapping):
        challenger = comparison.get("challenger") or {}
        champion = comparison.get("champion") or {}
        improvement = comparison.get("improvement")
        text += (
            f"; {comparison.get('metric')}: challenger v{challenger.get('version')} "
            f"{fmt_number(challenger.get('value'))}, champion v{champion.get('version')} "
            f"{fmt_number(champion.get('value'))}"
        )
        if isinstance(improvement, int | float):
            text += f", improvement {improvement:+.4g}"
        if comparison.get("needed") is not None:
            text += f" (needed {fmt_number(comparison.get('needed'))})"
    fired = [
        str(t.get("name"))
        for t in evidence.get("triggers") or []
        if isinstance(t, Mapping) and t.get("fired")
    ]
    if fired:
        text += f"; triggers fired: {', '.join(fired)}"
    return text


def _distributions(
    project: Workspace, name: str, window: tuple[datetime, datetime], columns: Sequence[str]
) -> list[tuple[str, Markup]]:
    """Reference against the newest window, for the columns that drift most (first in
    `columns`), read from the prediction log for the version that was monitored."""
    from keel.models.reference import reference_for
    from keel.monitoring.report import distribution_chart, short_name
    from keel.predlog.read import read_window
    from keel.stats.sketch import TableSketch

    latest = project.metadata.monitoring.latest_metrics(name, signals=["drift"])
    if not latest:
        return []
    version = project.metadata.models.get(name, max(latest, key=lambda m: m.window_end).version)
    try:
        reference = reference_for(project, version).sketch
    except KeelError as error:  # e.g. a version registered without a holdout to profile
        logger.info("no reference to draw for %s: %s", version.ref, error.message)
        return []
    shown = [c for c in columns if c in reference.columns][:MAX_DISTRIBUTIONS]
    table = read_window(
        project, name, window[0], window[1], version=version.version, columns=shown, missing_ok=True
    )
    current = TableSketch.of(table, [c for c in shown if c in table.column_names])
    return [
        (
            short_name(column),
            # distribution_chart escapes every text it draws.
            Markup(  # noqa: S704
                distribution_chart(
                    reference.columns.get(column),
                    current.columns.get(column),
                    label=f"{short_name(column)}: reference against the newest window",
                )
            ),
        )
        for column in shown
    ]
