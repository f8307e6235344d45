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
from html import escape
from typing import TYPE_CHECKING, Final

import numpy as np

from keel import __version__
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

if TYPE_CHECKING:
    from keel.domain.monitoring import Alert, Signal
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

_CSS: Final = (
    f":root{{--ref:{REFERENCE};--cur:{CURRENT};"
    + """--drift:#c62828;--ok:#2e7d32;
--warn:#ef6c00;--ink:#1f2733;--muted:#5f6b7a;--line:#e3e7ed;--panel:#ffffff;--bg:#f5f7fa}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1160px;margin:0 auto;padding:20px 16px 48px}
header.top{margin-bottom:18px}
h1{font-size:1.6rem;margin:0 0 4px;line-height:1.25}
h2{font-size:1.15rem;margin:30px 0 10px}
h3{font-size:1rem;margin:0;overflow-wrap:anywhere}
.meta{color:var(--muted);font-size:.9rem;display:flex;flex-wrap:wrap;gap:4px 18px}
.meta b{color:var(--ink);font-weight:600}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.summary{display:flex;flex-wrap:wrap;align-items:center;gap:10px 22px}
.big{font-size:2rem;font-weight:700;line-height:1}
.big.bad{color:var(--drift)}.big.good{color:var(--ok)}
.chips{display:flex;flex-wrap:wrap;gap:6px}
.chip{display:inline-block;padding:2px 9px;border-radius:999px;font-size:.82rem;
background:#eef1f5;color:var(--ink);white-space:nowrap}
.chip.bad{background:#fde7e7;color:var(--drift)}.chip.good{background:#e6f4e7;color:var(--ok)}
.chip.warn{background:#fff1e0;color:var(--warn)}
.sev{font-size:.75rem;font-weight:700;text-transform:uppercase;letter-spacing:.03em}
.sev.critical{color:var(--drift)}.sev.warning{color:var(--warn)}.sev.info{color:var(--muted)}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.88rem}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:.78rem;text-transform:uppercase;
letter-spacing:.03em;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.drifted td:first-child{box-shadow:inset 3px 0 var(--drift)}
.yes{color:var(--drift);font-weight:700}.no{color:var(--muted)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:14px}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:0 16px}
.pair>section{min-width:0}
.card{background:var(--panel);border:1px solid var(--line);border-radius:10px;
padding:12px 14px 8px;min-width:0}
.card.drifted{border-color:#f2b8b5;box-shadow:0 0 0 1px #f2b8b5}
.card header{display:flex;justify-content:space-between;align-items:baseline;gap:8px}
.card .stats{color:var(--muted);font-size:.8rem;margin:2px 0 6px}
.legend{display:flex;flex-wrap:wrap;gap:14px;color:var(--muted);font-size:.85rem;margin:4px 0 10px}
.sw{display:inline-block;width:12px;height:12px;border-radius:3px;vertical-align:-1px;
margin-right:5px}
.sw.ref{background:var(--ref);opacity:.6}.sw.cur{background:var(--cur)}
.sw.hot{background:#e34a33}.sw.calm{background:#c6d2e2}
svg.chart{display:block;height:auto;overflow:visible}
.note{color:var(--muted);font-size:.88rem;margin:6px 0}
footer{margin-top:36px;color:var(--muted);font-size:.8rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em;
background:#eef1f5;padding:1px 5px;border-radius:4px}
@media (max-width:600px){body{font-size:14px}main{padding:14px 10px 36px}
.big{font-size:1.6rem}.grid,.pair{grid-template-columns:1fr}th,td{padding:5px 6px}
.wide{display:none}
table.stack thead{display:none}table.stack tr{display:block;padding:8px 0;
border-bottom:1px solid var(--line)}table.stack td{display:block;border:0;padding:1px 0;
text-align:left}
table.stack td[data-label]::before{content:attr(data-label) ": ";color:var(--muted)}}
"""
)


# --- shared pieces ---------------------------------------------------------------------------


def _page(title: str, body: Iterable[str], generated: datetime) -> str:
    return "".join(
        [
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>",
            *body,
            f"<footer>Generated by keel {escape(__version__)} at "
            f"{escape(_when(generated))}. Self-contained: no scripts, nothing fetched.</footer>",
            "</main></body></html>\n",
        ]
    )


def _when(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M")


def _legend(*, heat: bool = False) -> str:
    items = [
        "<span><span class='sw ref'></span>reference</span>",
        "<span><span class='sw cur'></span>current</span>",
    ]
    if heat:
        items = [
            "<span><span class='sw calm'></span>within threshold (darker: closer)</span>",
            "<span><span class='sw hot'></span>drifted (darker: further past)</span>",
            "<span>cells: the p-value of hypothesis tests (ks, chi2), else the distance</span>",
        ]
    return f"<div class='legend'>{''.join(items)}</div>"


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


def _results_table(results: Sequence[DriftResult], short: bool = False) -> str:
    rows = []
    for r in results:
        name = short_name(r.column) if short else r.column
        rule = (
            f"p &lt; {escape(fmt(r.threshold))}"
            if r.decision == "p_value"
            else f"{escape(r.decision)} ≥ {escape(fmt(r.threshold))}"
        )
        rows.append(
            f"<tr class='{'drifted' if r.drifted else ''}'><td>{escape(name)}</td>"
            f"<td class='wide'>{escape(r.kind)}</td><td>{escape(r.test)}</td>"
            f"<td class='num'>{escape(fmt(r.statistic, 4))}</td>"
            f"<td class='num'>{escape(fmt(r.score, 3))}</td>"
            f"<td class='num'>{escape(_p(r.p_value))}</td>"
            f"<td class='num'>{rule}</td>"
            f"<td class='{'yes' if r.drifted else 'no'}'>{'drifted' if r.drifted else 'no'}</td>"
            f"<td class='num wide'>{r.reference_count:,} / {r.current_count:,}</td></tr>"
        )
    return (
        "<div class='panel scroll'><table><thead><tr><th>column</th><th class='wide'>type</th>"
        "<th>test</th>"
        "<th>statistic</th><th>score</th><th>p-value</th><th>drifted when</th><th>drifted</th>"
        "<th class='wide'>values ref / cur</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


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
        return f"<p class='note'>The {missing} has no such column.</p>"
    if reference.kind != current.kind:
        return (
            f"<p class='note'>Types differ: {escape(reference.kind)} in the reference, "
            f"{escape(current.kind)} now.</p>"
        )
    if reference.values == 0 or current.values == 0:
        return "<p class='note'>No values to draw on one side (all missing).</p>"
    if reference.kind == "numeric" and reference.numeric and current.numeric:
        return _numeric_chart(reference, current, label)
    if reference.kind in ("categorical", "boolean"):
        return _categorical_chart(reference, current, label)
    if reference.kind == "temporal":
        return (
            f"<p class='note'>Reference {escape(_epoch(reference.min))} … "
            f"{escape(_epoch(reference.max))}<br>Current {escape(_epoch(current.min))} … "
            f"{escape(_epoch(current.max))}</p>"
        )
    return "<p class='note'>Nothing to draw for this type.</p>"


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
) -> str:
    if result is None:
        badge, verdict = "<span class='chip'>not tested</span>", _why_not(name, reference, current)
    elif result.drifted:
        badge = "<span class='chip bad'>drifted</span>"
        verdict = _verdict(result)
    else:
        badge = "<span class='chip good'>stable</span>"
        verdict = _verdict(result)
    stats = " · ".join(x for x in (verdict, _column_stats(reference, current)) if x)
    chart = distribution_chart(reference, current, label=f"{name}: reference and current")
    drifted = " drifted" if result is not None and result.drifted else ""
    return (
        f"<section class='card{drifted}'><header><h3>{escape(name)}</h3>{badge}</header>"
        f"<div class='stats'>{escape(stats)}</div>{chart}</section>"
    )


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
    generated = generated_at or datetime.now(UTC)
    ordered = _ordered(results)
    drifted = [r for r in ordered if r.drifted]
    verdict = (
        f"<div class='big bad'>{len(drifted)} of {len(ordered)}</div>"
        f"<div><b>columns drifted</b></div>"
        if drifted
        else f"<div class='big good'>0 of {len(ordered)}</div><div><b>columns drifted</b></div>"
    )
    chips = "".join(f"<span class='chip bad'>{escape(r.column)}</span>" for r in drifted)
    tests = sorted({r.test for r in ordered})
    body = [
        f"<header class='top'><h1>{escape(title)}</h1><div class='meta'>",
        f"<span>reference <b>{escape(reference_name)}</b> ({reference.rows:,} rows)</span>",
        f"<span>current <b>{escape(current_name)}</b> ({current.rows:,} rows)</span>",
        f"<span>tests <b>{escape(', '.join(tests) or '–')}</b></span>",
        "</div></header>",
        f"<section class='panel summary'>{verdict}<div class='chips'>{chips}</div></section>",
        "<h2>Tests, drifted first</h2>",
        _results_table(ordered),
        "<h2>Distributions</h2>",
        _legend(),
        "<div class='grid'>",
        *(
            _card(r.column, r, reference.columns.get(r.column), current.columns.get(r.column))
            for r in ordered
        ),
        "</div>",
    ]
    return _page(title, body, generated)


# --- keel monitor --report -------------------------------------------------------------------


def _window_labels(windows: Sequence[WindowResult]) -> list[str]:
    daily = all(
        w.end - w.start >= timedelta(days=1) and (w.start.hour, w.start.minute) == (0, 0)
        for w in windows
    )
    return [w.start.strftime("%m-%d" if daily else "%m-%d %H:%M") for w in windows]


def _alerts_section(report: MonitorReport) -> list[str]:
    alerts = sorted(
        report.open_alerts,
        key=lambda a: ({"critical": 0, "warning": 1, "info": 2}.get(a.severity, 3), a.opened_at),
    )
    out = [f"<h2>Open alerts ({len(alerts)})</h2>"]
    if not alerts:
        out.append("<div class='panel'><span class='chip good'>no open alerts</span></div>")
        return out
    opened = {a.id for a in report.opened}
    rows = [_alert_row(a, new=a.id in opened) for a in alerts]
    out.append(
        "<div class='panel'><table class='stack'><thead><tr><th>severity</th><th>rule</th>"
        "<th>subject</th><th>what</th><th>owner</th><th>since</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )
    if report.resolved:
        names = ", ".join(f"{a.rule} ({short_name(a.subject) or a.model})" for a in report.resolved)
        out.append(f"<p class='note'>Resolved by this run: {escape(names)}</p>")
    return out


def _alert_row(alert: Alert, *, new: bool) -> str:
    new_chip = " <span class='chip warn'>new</span>" if new else ""
    return (
        f"<tr><td><span class='sev {escape(alert.severity)}'>{escape(alert.severity)}</span>"
        f"{new_chip}</td><td data-label='rule'>{escape(alert.rule)}</td>"
        f"<td data-label='subject'>{escape(short_name(alert.subject) or '–')}</td>"
        f"<td>{escape(alert.message)}</td>"
        f"<td data-label='owner'><b>{escape(alert.owner or 'unassigned')}</b></td>"
        f"<td class='num' data-label='since'>{escape(_when(alert.opened_at))}</td></tr>"
    )


def _freshness(signals: Sequence[Signal]) -> str:
    chips = []
    for s in signals:
        age = "–" if s.value is None else _age(s.value)
        kind = "bad" if s.breached else "good"
        limit = f" (limit {_age(s.limit)})" if s.limit is not None else ""
        if s.detail.get("measured_from"):
            limit = f" from {s.detail['measured_from']}{limit}"
        chips.append(
            f"<span class='chip {kind}'>{escape(s.name.replace('_', ' '))}: "
            f"{escape(age)}{escape(limit)}</span>"
        )
    return f"<div class='chips'>{''.join(chips)}</div>" if chips else ""


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
        return "<p class='note'>No window had enough rows to test for drift.</p>", []

    def order(name: str) -> tuple[int, int, float, str]:
        cells = columns[name]
        hits = sum(1 for c in cells if c is not None and c.drifted)
        last = next((c.level for c in reversed(cells) if c is not None), 0.0)
        return (0 if name.startswith("outputs.") else 1, -hits, -last, name)

    names = sorted(columns, key=order)
    rows = [("score: " if n.startswith("outputs.") else "") + short_name(n) for n in names]
    svg = heatmap(rows, labels, [columns[n] for n in names], label="drift per feature and window")
    return svg, names


def _performance(report: MonitorReport, labels: Sequence[str]) -> str:
    from keel.domain.metric import direction_of, direction_words

    values = [w.performance for w in report.windows]
    coverage = [w.coverage for w in report.windows]
    metric = next((w.metric for w in report.windows if w.metric), None)
    if all(v is None for v in values):
        covered = sum(w.labelled for w in report.windows)
        return (
            "<p class='note'>No performance yet: "
            + ("no logged prediction has a label" if not covered else "too few labels")
            + ". Send ground truth with <code>keel feedback</code>.</p>"
        )
    series = [LineSeries(metric or "performance", values, REFERENCE)]
    higher = None if metric is None else direction_of(metric)
    axis = (metric or "performance") + ("" if higher is None else f" ({direction_words(higher)})")
    return line_chart(
        labels,
        series,
        bars=coverage,
        bars_label="label coverage",
        y_label=axis,
        label=f"{axis} and label coverage per window",
    )


def _volume(report: MonitorReport, labels: Sequence[str]) -> str:
    versions = sorted({v for w in report.windows for v in w.versions})
    if not versions:
        return line_chart(
            labels,
            [LineSeries("predictions", [float(w.rows) for w in report.windows], palette(0))],
            label="predictions per window",
        )
    stacks = [(f"v{v}", [float(w.versions.get(v, 0)) for w in report.windows]) for v in versions]
    legend = "".join(
        f"<span><span class='sw' style='background:{palette(i)}'></span>v{v}</span>"
        for i, v in enumerate(versions)
    )
    return f"<div class='legend'>{legend}</div>" + stacked_bars(
        labels, stacks, label="predictions per window by model version"
    )


def _breached(window: WindowResult) -> str:
    rows = [s for s in window.signals if s.breached and s.name not in ("drift", "score_drift")]
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{escape(s.name)}</td><td>{escape(short_name(s.subject) or '–')}</td>"
        f"<td class='num'>{escape(fmt(s.value, 3))}</td>"
        f"<td class='num'>{escape(fmt(s.limit, 3))}</td></tr>"
        for s in rows
    )
    return (
        "<h2>Other signals breached in the latest window</h2><div class='panel scroll'><table>"
        "<thead><tr><th>signal</th><th>subject</th><th>value</th><th>limit</th></tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def render_monitor_report(report: MonitorReport) -> str:
    """A page for one `keel monitor` run over a model's recent windows."""
    generated = report.generated_at or datetime.now(UTC)
    windows = report.windows
    labels = _window_labels(windows)
    title = f"Monitoring {report.model}"
    span = f"{_when(windows[0].start)} → {_when(windows[-1].end)}" if windows else "no windows"
    body = [
        f"<header class='top'><h1>{escape(title)}</h1><div class='meta'>",
        f"<span>reference <b>v{report.version}</b>: {escape(report.reference_source)} "
        f"({report.reference.rows:,} rows)</span>",
        f"<span>windows <b>{len(windows)}</b> × {escape(report.window)}: {escape(span)}</span>",
        f"<span>predictions <b>{sum(w.rows for w in windows):,}</b></span>",
        f"<span>generated <b>{escape(_when(generated))}</b></span>",
        "</div></header>",
        *_alerts_section(report),
    ]
    if report.freshness:
        body += ["<h2>Freshness</h2>", _freshness(report.freshness)]
    if not windows:
        body.append("<p class='note'>No logged predictions in range.</p>")
        return _page(title, body, generated)
    skipped = [
        f"{label} ({w.not_judged})"
        for label, w in zip(labels, windows, strict=True)
        if w.not_judged
    ]
    if skipped:
        body.append(f"<p class='note'>Windows not judged: {escape('; '.join(skipped))}.</p>")
    newest = report.latest_judged
    body += [
        "<h2>Drift over time</h2>",
        _legend(heat=True),
        "<div class='panel scroll'>",
        drift_heatmap([w.drift for w in report.windows], labels)[0],
        "</div>",
        "<div class='pair'><section><h2>Performance and label coverage</h2>",
        f"<div class='panel'>{_performance(report, labels)}</div></section>",
        "<section><h2>Prediction volume</h2>",
        f"<div class='panel'>{_volume(report, labels)}</div></section></div>",
    ]
    if newest is None:
        return _page(title, body, generated)
    latest = newest
    body.append(_breached(latest))
    results = {r.column: r for r in latest.drift}
    outputs = sorted(
        n
        for n in set(report.reference.columns) | set(latest.sketch.columns)
        if n.startswith("outputs.")
    )
    inputs = [
        r.column for r in _ordered(latest.drift) if not r.column.startswith("outputs.")
    ] + sorted(n for n in report.reference.columns if n.startswith("inputs.") and n not in results)
    when = f"{labels[windows.index(latest)]} ({latest.rows:,} predictions)"
    if outputs:
        body += [
            f"<h2>Scores: reference vs latest window, {escape(when)}</h2>",
            _legend(),
            "<div class='grid'>",
            *(
                _card(
                    short_name(n),
                    results.get(n),
                    report.reference.columns.get(n),
                    latest.sketch.columns.get(n),
                )
                for n in outputs
            ),
            "</div>",
        ]
    body += [
        f"<h2>Features: reference vs latest window, {escape(when)}</h2>",
        _legend(),
        "<div class='grid'>",
        *(
            _card(
                short_name(n),
                results.get(n),
                report.reference.columns.get(n),
                latest.sketch.columns.get(n),
            )
            for n in inputs
        ),
        "</div>",
        "<h2>Latest window's tests</h2>",
        _results_table(_ordered(latest.drift), short=True),
    ]
    return _page(title, body, generated)
