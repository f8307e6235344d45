"""Self-contained HTML reports: one file with inline CSS and SVG, nothing fetched.

    html = render_drift_report(results, reference, current, title=..., reference_name=...,
                               current_name=...)          # `keel drift --report`
    html = render_monitor_report(report)                  # `keel monitor --report`

A drift report says how many columns drifted and which, lists every test (drifted first), and
draws each column's reference and current distributions from their sketches. A monitoring
report leads with the open alerts and whose they are, then drift per feature over the
windows, performance with label coverage, prediction volume, and the scores and features of
the latest window against the reference. Charts come from `keel.monitoring.charts`; every
text from data is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Final

import numpy as np
from jinja2 import Environment
from markupsafe import Markup

from keel.monitoring.charts import (
    CURRENT,
    REFERENCE,
    HeatCell,
    LineSeries,
    fmt,
    heatmap,
    line_chart,
    overlay_histogram,
    paired_bars,
    palette,
    stacked_bars,
)
from keel.monitoring.signals import drift_value
from keel.reports.html import environment
from keel.version import __version__

if TYPE_CHECKING:
    from keel.domain.monitoring import Signal
    from keel.monitoring.model import MonitorReport, WindowResult
    from keel.stats.drift import DriftResult
    from keel.stats.sketch import ColumnSketch, TableSketch

__all__ = [
    "distribution_chart",
    "drift_heatmap",
    "drift_level",
    "render_drift_report",
    "render_monitor_report",
    "short_name",
]

_BINS: Final = 24
_TOP_CATEGORIES: Final = 8
#: Integer-valued columns within this range get one bin per value (months, hours, counts).
_MAX_INTEGER_BINS: Final = 40


# --- shared pieces ---------------------------------------------------------------------------


def _render(template: str, *, title: str, generated: datetime, **context: object) -> str:
    page = (
        _environment()
        .get_template(template)
        .render(
            title=title,
            keel_version=__version__,
            generated=_when(generated),
            colours={"reference": REFERENCE, "current": CURRENT},
            **context,
        )
    )
    return page + "\n"


@cache
def _environment() -> Environment:
    return environment()


def _note(*lines: str) -> str:
    """A short note in place of a chart, one line a text (escaped)."""
    parts = _environment().get_template("report/parts.html").module
    return str(parts.note(*lines))  # type: ignore[attr-defined]


def _when(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M")


def _pct(share: float | None) -> str:
    if share is None or math.isnan(share):
        return "–"
    if 0 < share < 0.001:
        return "<0.1%"
    return f"{share * 100:.1f}%"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "<1e-300"
    return fmt(value, 3)


def short_name(column: str) -> str:
    """`inputs.distance` -> `distance`; outputs keep their prefix off too."""
    for prefix in ("inputs.", "outputs."):
        if column.startswith(prefix):
            return column[len(prefix) :]
    return column


def drift_level(result: DriftResult) -> float:
    """How far a result is from its threshold on one scale: 1 at the threshold, above 1
    drifted. p-values compare on a log scale (p = threshold**2 gives 2)."""
    threshold = result.threshold
    if result.decision == "p_value":
        if result.p_value is None or not 0 < threshold < 1:
            return 0.0
        return math.log(max(result.p_value, 1e-300)) / math.log(threshold)
    value = result.score if result.decision == "score" else result.statistic
    if value is None or threshold <= 0:
        return 0.0
    return float(value) / threshold


def _ordered(results: Iterable[DriftResult]) -> list[DriftResult]:
    return sorted(results, key=lambda r: (not r.drifted, -drift_level(r), r.column))


def _results_rows(results: Sequence[DriftResult], short: bool = False) -> list[dict[str, object]]:
    return [
        {
            "name": short_name(r.column) if short else r.column,
            "kind": r.kind,
            "test": r.test,
            "statistic": fmt(r.statistic, 4),
            "score": fmt(r.score, 3),
            "p_value": _p(r.p_value),
            "p_rule": r.decision == "p_value",
            "decision": r.decision,
            "threshold": fmt(r.threshold),
            "drifted": r.drifted,
            "counts": f"{r.reference_count:,} / {r.current_count:,}",
        }
        for r in results
    ]


# --- distributions ---------------------------------------------------------------------------


def _shares(sketch: ColumnSketch, edges: np.ndarray) -> list[float]:
    """Shares of a numeric sketch's values in the bins between `edges`, the outer bins open."""
    assert sketch.numeric is not None
    total = sketch.numeric.count
    if total == 0:
        return [0.0] * (len(edges) - 1)
    cumulative = sketch.numeric.cdf(edges[1:-1])
    bounded = np.concatenate(([0.0], cumulative, [1.0]))
    return [max(float(x), 0.0) for x in np.diff(bounded)]


def _integer_grid(reference: ColumnSketch, current: ColumnSketch) -> np.ndarray | None:
    """Bin edges at half-integers when both columns hold few, small whole numbers."""
    seen: list[np.ndarray] = []
    for sketch in (reference, current):
        assert sketch.numeric is not None
        values, counts = sketch.numeric.support()
        seen.append(values[counts > 0])
    values = np.concatenate(seen)
    if values.size == 0 or np.abs(values).max() > 90:
        return None
    whole = np.round(values)
    # A sketch stands for a value by its bucket's representative, within 0.5% of it.
    if np.any(np.abs(values - whole) > 0.006 * np.maximum(np.abs(whole), 1)):
        return None
    low, high = int(whole.min()), int(whole.max())
    if high - low + 1 > _MAX_INTEGER_BINS:
        return None
    return np.arange(low - 0.5, high + 1.0, 1.0)


def _numeric_chart(reference: ColumnSketch, current: ColumnSketch, label: str) -> str:
    assert reference.numeric is not None and current.numeric is not None
    edges = _integer_grid(reference, current)
    open_ends = False
    if edges is None:
        low = min(float(s.numeric.quantiles(0.01)) for s in (reference, current) if s.numeric)
        high = max(float(s.numeric.quantiles(0.99)) for s in (reference, current) if s.numeric)
        low_all = min(x for x in (reference.min, current.min) if x is not None)
        high_all = max(x for x in (reference.max, current.max) if x is not None)
        if high <= low:
            low, high = low_all, high_all
        if high <= low:
            high = low + 1.0
        edges = np.linspace(low, high, _BINS + 1)
        open_ends = low > low_all or high < high_all
        # The outer bins take what lies beyond the 1st and 99th percentiles.
    return overlay_histogram(
        [float(e) for e in edges],
        _shares(reference, edges),
        _shares(current, edges),
        label=label,
        open_ends=open_ends,
    )


def _categorical_chart(reference: ColumnSketch, current: ColumnSketch, label: str) -> str:
    ref_total = max(reference.values, 1)
    cur_total = max(current.values, 1)
    names = set(reference.categories) | set(current.categories)
    ranked = sorted(
        names,
        key=lambda n: (
            -max(
                reference.categories.get(n, 0) / ref_total, current.categories.get(n, 0) / cur_total
            ),
            n,
        ),
    )
    shown = ranked[:_TOP_CATEGORIES]
    ref = [reference.categories.get(n, 0) / ref_total for n in shown]
    cur = [current.categories.get(n, 0) / cur_total for n in shown]
    rest_ref, rest_cur = 1 - sum(ref), 1 - sum(cur)
    labels = list(shown)
    if len(ranked) > len(shown) or rest_ref > 1e-9 or rest_cur > 1e-9:
        others = len(ranked) - len(shown)
        labels.append(f"other ({others:,})" if others else "other")
        ref.append(max(rest_ref, 0.0))
        cur.append(max(rest_cur, 0.0))
    return paired_bars(labels, ref, cur, label=label)


def distribution_chart(
    reference: ColumnSketch | None, current: ColumnSketch | None, *, label: str
) -> str:
    """The reference and current distributions of one column as an SVG (or a short note
    when there is nothing to draw)."""
    if reference is None or current is None:
        missing = "reference" if reference is None else "current data"
        return _note(f"The {missing} has no such column.")
    if reference.kind != current.kind:
        return _note(f"Types differ: {reference.kind} in the reference, {current.kind} now.")
    if reference.values == 0 or current.values == 0:
        return _note("No values to draw on one side (all missing).")
    if reference.kind == "numeric" and reference.numeric and current.numeric:
        return _numeric_chart(reference, current, label)
    if reference.kind in ("categorical", "boolean"):
        return _categorical_chart(reference, current, label)
    if reference.kind == "temporal":
        return _note(
            f"Reference {_epoch(reference.min)} … {_epoch(reference.max)}",
            f"Current {_epoch(current.min)} … {_epoch(current.max)}",
        )
    return _note("Nothing to draw for this type.")


def _epoch(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return _when(datetime.fromtimestamp(seconds, UTC))


def _column_stats(reference: ColumnSketch | None, current: ColumnSketch | None) -> str:
    parts = []
    if reference is not None and current is not None:
        if reference.kind == "numeric" and reference.values and current.values:
            parts.append(f"mean {fmt(reference.mean)} → {fmt(current.mean)}")
        if reference.nulls or current.nulls:
            parts.append(f"nulls {_pct(reference.null_rate)} → {_pct(current.null_rate)}")
    return " · ".join(parts)


def _why_not(name: str, reference: ColumnSketch | None, current: ColumnSketch | None) -> str:
    """Why drift tests leave the column out, in `keel.stats.drift.choose_test`'s words; empty
    when the chart says it already (a side lacks the column, types differ)."""
    from keel.stats.drift import ColumnSide, Skipped, choose_test

    if reference is None or current is None:
        return ""
    try:
        choice = choose_test(name, ColumnSide.of_sketch(reference), ColumnSide.of_sketch(current))
    except ValueError:
        return ""
    return choice.reason if isinstance(choice, Skipped) else ""


def _card(
    name: str,
    result: DriftResult | None,
    reference: ColumnSketch | None,
    current: ColumnSketch | None,
) -> dict[str, object]:
    if result is None:
        state, verdict = "not tested", _why_not(name, reference, current)
    else:
        state, verdict = ("drifted" if result.drifted else "stable"), _verdict(result)
    stats = " · ".join(x for x in (verdict, _column_stats(reference, current)) if x)
    chart = distribution_chart(reference, current, label=f"{name}: reference and current")
    return {
        "name": name,
        "verdict": state,
        "drifted": state == "drifted",
        "stats": stats,
        # distribution_chart escapes every text it draws.
        "chart": Markup(chart),  # noqa: S704
    }


def _verdict(result: DriftResult) -> str:
    text = f"{result.test} {fmt(result.statistic, 3)}"
    if result.p_value is not None:
        text += f", p {_p(result.p_value)}"
    if result.decision == "score" and result.score is not None:
        text += f", score {fmt(result.score, 3)}"
    return text


# --- keel drift --report ---------------------------------------------------------------------


def render_drift_report(
    results: Sequence[DriftResult],
    reference: TableSketch,
    current: TableSketch,
    *,
    title: str,
    reference_name: str,
    current_name: str,
    generated_at: datetime | None = None,
) -> str:
    """A page for one comparison of two tables (`keel drift ... --report FILE.html`)."""
    ordered = _ordered(results)
    return _render(
        "report/drift.html",
        title=title,
        generated=generated_at or datetime.now(UTC),
        reference={"name": reference_name, "rows": f"{reference.rows:,}"},
        current={"name": current_name, "rows": f"{current.rows:,}"},
        tests=", ".join(sorted({r.test for r in ordered})) or "–",
        drifted=[r.column for r in ordered if r.drifted],
        tested=len(ordered),
        rows=_results_rows(ordered),
        distributions=[
            _card(r.column, r, reference.columns.get(r.column), current.columns.get(r.column))
            for r in ordered
        ],
    )


# --- keel monitor --report -------------------------------------------------------------------


def _window_labels(windows: Sequence[WindowResult]) -> list[str]:
    daily = all(
        w.end - w.start >= timedelta(days=1) and (w.start.hour, w.start.minute) == (0, 0)
        for w in windows
    )
    return [w.start.strftime("%m-%d" if daily else "%m-%d %H:%M") for w in windows]


def _alerts(report: MonitorReport) -> list[dict[str, object]]:
    alerts = sorted(
        report.open_alerts,
        key=lambda a: ({"critical": 0, "warning": 1, "info": 2}.get(a.severity, 3), a.opened_at),
    )
    opened = {a.id for a in report.opened}
    return [
        {
            "severity": a.severity,
            "new": a.id in opened,
            "rule": a.rule,
            "subject": short_name(a.subject) or "–",
            "message": a.message,
            "owner": a.owner or "unassigned",
            "since": _when(a.opened_at),
        }
        for a in alerts
    ]


def _freshness(signals: Sequence[Signal]) -> list[dict[str, str]]:
    chips = []
    for s in signals:
        age = "–" if s.value is None else _age(s.value)
        limit = f" (limit {_age(s.limit)})" if s.limit is not None else ""
        if s.detail.get("measured_from"):
            limit = f" from {s.detail['measured_from']}{limit}"
        chips.append(
            {
                "kind": "bad" if s.breached else "good",
                "text": f"{s.name.replace('_', ' ')}: {age}{limit}",
            }
        )
    return chips


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def drift_heatmap(
    windows: Sequence[Sequence[DriftResult]], labels: Sequence[str]
) -> tuple[str, list[str]]:
    """Drift per column (rows) and window (columns, labelled `labels`) as an SVG, drifted
    cells red; and the columns in the order drawn: outputs first, then the most drifted."""
    columns: dict[str, list[HeatCell | None]] = {}
    for j, results in enumerate(windows):
        for r in results:
            cells = columns.setdefault(r.column, [None] * len(windows))
            text = fmt(drift_value(r), 2)
            if r.decision == "p_value" and r.p_value is not None:
                text = "p " + (fmt(r.p_value, 1) if r.p_value >= 1e-99 else "≈0")
            cells[j] = HeatCell(
                text=text,
                level=drift_level(r),
                drifted=r.drifted,
                tooltip=(
                    f"{short_name(r.column)}, {labels[j]}: {_verdict(r)} "
                    f"({'drifted' if r.drifted else 'within threshold'})"
                ),
            )
    if not columns:
        return _note("No window had enough rows to test for drift."), []

    def order(name: str) -> tuple[int, int, float, str]:
        cells = columns[name]
        hits = sum(1 for c in cells if c is not None and c.drifted)
        last = next((c.level for c in reversed(cells) if c is not None), 0.0)
        return (0 if name.startswith("outputs.") else 1, -hits, -last, name)

    names = sorted(columns, key=order)
    rows = [("score: " if n.startswith("outputs.") else "") + short_name(n) for n in names]
    svg = heatmap(rows, labels, [columns[n] for n in names], label="drift per feature and window")
    return svg, names


def _performance(report: MonitorReport, labels: Sequence[str]) -> Markup | None:
    """The metric over the windows with label coverage as bars; None while no window has
    one."""
    from keel.domain.metric import direction_of, direction_words

    values = [w.performance for w in report.windows]
    coverage = [w.coverage for w in report.windows]
    metric = next((w.metric for w in report.windows if w.metric), None)
    if all(v is None for v in values):
        return None
    series = [LineSeries(metric or "performance", values, REFERENCE)]
    higher = None if metric is None else direction_of(metric)
    axis = (metric or "performance") + ("" if higher is None else f" ({direction_words(higher)})")
    return Markup(  # noqa: S704 - the chart escapes what it draws
        line_chart(
            labels,
            series,
            bars=coverage,
            bars_label="label coverage",
            y_label=axis,
            label=f"{axis} and label coverage per window",
        )
    )


def _volume(report: MonitorReport, labels: Sequence[str]) -> tuple[list[tuple[int, str]], Markup]:
    """The versions with their colours, and the predictions per window stacked by version
    (a line of the totals when no window names a version)."""
    versions = sorted({v for w in report.windows for v in w.versions})
    if not versions:
        chart = line_chart(
            labels,
            [LineSeries("predictions", [float(w.rows) for w in report.windows], palette(0))],
            label="predictions per window",
        )
        return [], Markup(chart)  # noqa: S704 - the chart escapes what it draws
    stacks = [(f"v{v}", [float(w.versions.get(v, 0)) for w in report.windows]) for v in versions]
    chart = stacked_bars(labels, stacks, label="predictions per window by model version")
    colours = [(v, palette(i)) for i, v in enumerate(versions)]
    return colours, Markup(chart)  # noqa: S704 - the chart escapes what it draws


def _breached(window: WindowResult) -> list[dict[str, str]]:
    return [
        {
            "name": s.name,
            "subject": short_name(s.subject) or "–",
            "value": fmt(s.value, 3),
            "limit": fmt(s.limit, 3),
        }
        for s in window.signals
        if s.breached and s.name not in ("drift", "score_drift")
    ]


def render_monitor_report(report: MonitorReport) -> str:
    """A page for one `keel monitor` run over a model's recent windows."""
    generated = report.generated_at or datetime.now(UTC)
    windows = report.windows
    labels = _window_labels(windows)
    span = f"{_when(windows[0].start)} → {_when(windows[-1].end)}" if windows else "no windows"
    resolved = ", ".join(f"{a.rule} ({short_name(a.subject) or a.model})" for a in report.resolved)
    context: dict[str, object] = {
        "version": report.version,
        "reference_source": report.reference_source,
        "reference_rows": f"{report.reference.rows:,}",
        "windows": len(windows),
        "window": report.window,
        "span": span,
        "predictions": f"{sum(w.rows for w in windows):,}",
        "alerts": _alerts(report),
        "resolved": resolved,
        "freshness": _freshness(report.freshness),
        "has_windows": bool(windows),
        "latest": None,
    }
    if windows:
        versions, volume = _volume(report, labels)
        heatmap = drift_heatmap([w.drift for w in windows], labels)[0]
        context |= {
            "not_judged": "; ".join(
                f"{label} ({w.not_judged})"
                for label, w in zip(labels, windows, strict=True)
                if w.not_judged
            ),
            "heatmap": Markup(heatmap),  # noqa: S704 - drift_heatmap escapes what it draws
            "performance": _performance(report, labels),
            "labelled": sum(w.labelled for w in windows),
            "versions": versions,
            "volume": volume,
        }
    latest = report.latest_judged
    if latest is not None:
        results = {r.column: r for r in latest.drift}
        outputs = sorted(
            n
            for n in set(report.reference.columns) | set(latest.sketch.columns)
            if n.startswith("outputs.")
        )
        inputs = [
            r.column for r in _ordered(latest.drift) if not r.column.startswith("outputs.")
        ] + sorted(
            n for n in report.reference.columns if n.startswith("inputs.") and n not in results
        )

        def cards(names: Sequence[str]) -> list[dict[str, object]]:
            return [
                _card(
                    short_name(n),
                    results.get(n),
                    report.reference.columns.get(n),
                    latest.sketch.columns.get(n),
                )
                for n in names
            ]

        context |= {
            "latest": f"{labels[windows.index(latest)]} ({latest.rows:,} predictions)",
            "breached": _breached(latest),
            "scores": cards(outputs),
            "features": cards(inputs),
            "rows": _results_rows(_ordered(latest.drift), short=True),
        }
    return _render(
        "report/monitor.html", title=f"Monitoring {report.model}", generated=generated, **context
    )
