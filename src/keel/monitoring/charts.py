"""Small inline-SVG charts for keel's HTML reports: no JavaScript, no fetch, no library.

Each function returns one `<svg>` element that scales to its container's width (viewBox),
so a report reads on a laptop and on a phone. Every text is escaped here; callers pass
plain strings. Colours: the reference is blue, the current data orange, drift red.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

__all__ = [
    "CURRENT",
    "DRIFT",
    "OK",
    "REFERENCE",
    "HeatCell",
    "LineSeries",
    "fmt",
    "heatmap",
    "line_chart",
    "nice_ticks",
    "overlay_histogram",
    "paired_bars",
    "palette",
    "stacked_bars",
]

REFERENCE: Final = "#4c78a8"
CURRENT: Final = "#f58518"
DRIFT: Final = "#d62728"
OK: Final = "#2ca02c"
_AXIS: Final = "#9aa3ad"
_GRID: Final = "#e6e9ee"
_TEXT: Final = "#3b4350"
_FONT: Final = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'
_PALETTE: Final = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d")


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for people: 1,234 / 12.3 / 0.0123 / 1.2e-07; an en dash for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 10_000:
        return f"{value:,.0f}"
    if magnitude < 10 ** -(digits + 1):
        return f"{value:.{max(digits - 2, 1)}e}"
    text = f"{value:.{digits}g}"
    if "e" in text:  # 1e+03 from %g: write it out
        text = f"{value:.0f}"
    return text


def _pct(share: float) -> str:
    if share == 0:
        return "0%"
    if share < 0.001:
        return "<0.1%"
    return f"{share * 100:.1f}%" if share < 0.1 else f"{share * 100:.0f}%"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values from at or below `low` to at or above `high`, in steps of 1, 2, 2.5
    or 5 times a power of ten."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high < low:
        low, high = high, low
    if high == low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    # From the last tick at or below `low` to the first at or above `high`: the axis covers
    # every value.
    first = math.floor(low / step + 1e-9) * step
    ticks = []
    value = first
    while value < high + step * (1 - 1e-9):
        ticks.append(round(value, 12))
        if value >= high - step * 1e-9:
            break
        value += step
    return ticks


def _svg(
    width: int,
    height: int,
    body: Sequence[str],
    label: str,
    *,
    max_scale: float | None = None,
    min_scale: float | None = None,
) -> str:
    # Within these many times the natural size, text stays readable: a container narrower
    # than min_scale scrolls (heatmaps on phones) instead of shrinking the chart.
    rules = []
    if max_scale:
        rules.append(f"max-width:{round(width * max_scale)}px")
    if min_scale:
        rules.append(f"min-width:{round(width * min_scale)}px")
    style = f' style="{";".join(rules)}"' if rules else ""
    return (
        f'<svg class="chart"{style} viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" {_FONT}>'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: int = 10,
    anchor: str = "middle",
    color: str = _TEXT,
    weight: str = "normal",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{color}" font-weight="{weight}">{escape(text)}</text>'
    )


def _y_axis(
    ticks: Sequence[float],
    y_of: Callable[[float], float],
    left: float,
    right: float,
    label: str = "",
    percent: bool = False,
    size: int = 10,
) -> list[str]:
    out = []
    for tick in ticks:
        y = y_of(tick)
        out.append(
            f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{_GRID}" stroke-width="1"/>'
        )
        text = _pct(tick) if percent else fmt(tick)
        out.append(_text(left - 4, y + size * 0.35, text, anchor="end", size=size))
    if label:
        out.append(_text(left, 10, label, anchor="start", size=9, color=_AXIS))
    return out


def overlay_histogram(
    edges: Sequence[float],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    label: str,
    open_ends: bool = False,
) -> str:
    """Shares of values per bin: the reference as filled bars, the current data as an
    outlined step on top. `open_ends`: the first and last bins also hold what lies beyond."""
    width, height = 360, 170
    left, right, top, bottom = 40, 10, 16, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    bins = len(reference)
    peak = max([*reference, *current, 1e-12])
    ticks = nice_ticks(0, peak, 4)
    y_max = max(ticks[-1] if ticks else peak, peak)

    def y_of(value: float) -> float:
        return top + plot_h * (1 - value / y_max)

    def x_of(index: float) -> float:
        return left + plot_w * index / bins

    body = _y_axis(ticks, y_of, left, width - right, "share of values", percent=True)
    for i, share in enumerate(reference):
        if share <= 0:
            continue
        y = y_of(share)
        body.append(
            f'<rect x="{x_of(i) + 0.5:.1f}" y="{y:.1f}" width="{max(plot_w / bins - 1, 0.5):.1f}" '
            f'height="{top + plot_h - y:.1f}" fill="{REFERENCE}" fill-opacity="0.55">'
            f"<title>{escape(_bin_label(edges, i, bins, open_ends))}: reference "
            f"{_pct(share)}, current {_pct(current[i])}</title></rect>"
        )
    points = [f"M{x_of(0):.1f},{y_of(0):.1f}"]
    for i, share in enumerate(current):
        points.append(f"L{x_of(i):.1f},{y_of(share):.1f}L{x_of(i + 1):.1f},{y_of(share):.1f}")
    points.append(f"L{x_of(bins):.1f},{y_of(0):.1f}")
    body.append(
        f'<path d="{"".join(points)}" fill="{CURRENT}" fill-opacity="0.07" stroke="{CURRENT}" '
        f'stroke-width="1.8" stroke-linejoin="round"/>'
    )
    body.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="{_AXIS}"/>'
    )
    low, high = edges[0], edges[-1]
    for tick in nice_ticks(low, high, 5):
        x = left + plot_w * (tick - low) / (high - low) if high > low else left + plot_w / 2
        if left - 1 <= x <= width - right + 1:
            body.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" '
                f'stroke="{_AXIS}"/>'
            )
            body.append(_text(x, top + plot_h + 15, fmt(tick)))
    if open_ends:
        body.append(_text(left, height - 1, f"≤{fmt(low)}", anchor="start", size=9, color=_AXIS))
        body.append(
            _text(width - right, height - 1, f"≥{fmt(high)}", anchor="end", size=9, color=_AXIS)
        )
    return _svg(width, height, body, label)


def _bin_label(edges: Sequence[float], i: int, bins: int, open_ends: bool) -> str:
    if open_ends and i == 0:
        return f"≤ {fmt(edges[1])}"
    if open_ends and i == bins - 1:
        return f"> {fmt(edges[-2])}"
    return f"{fmt(edges[i])} – {fmt(edges[i + 1])}"


def paired_bars(
    labels: Sequence[str], reference: Sequence[float], current: Sequence[float], *, label: str
) -> str:
    """Horizontal bars per category: reference above current, as shares."""
    row_h, gap = 16, 7
    left = min(max((max((len(t) for t in labels), default=4)) * 6 + 10, 60), 130)
    width, right, top = 360, 44, 6
    peak = max([*reference, *current, 1e-12])
    plot_w = width - left - right
    body: list[str] = []
    y = float(top)
    for name, ref, cur in zip(labels, reference, current, strict=True):
        shown = name if len(name) <= 20 else name[:19] + "…"
        body.append(_text(left - 6, y + row_h * 0.75, shown, anchor="end"))
        for share, color, offset in ((ref, REFERENCE, 0.0), (cur, CURRENT, row_h / 2 + 1)):
            w = plot_w * share / peak
            body.append(
                f'<rect x="{left}" y="{y + offset:.1f}" width="{max(w, 0.5):.1f}" '
                f'height="{row_h / 2:.1f}" rx="1.5" fill="{color}">'
                f"<title>{escape(name)}: {'reference' if color == REFERENCE else 'current'} "
                f"{_pct(share)}</title></rect>"
            )
            body.append(
                _text(
                    left + w + 4,
                    y + offset + row_h / 2 - 1,
                    _pct(share),
                    anchor="start",
                    size=9,
                    color=_AXIS,
                )
            )
        y += row_h + gap
    return _svg(width, math.ceil(y + 2), body, label)


@dataclass(frozen=True)
class HeatCell:
    """One cell of the drift heatmap: `level` < 1 calm, >= 1 drifted (how far past)."""

    text: str
    level: float
    drifted: bool
    tooltip: str


def _heat_colour(cell: HeatCell) -> str:
    if cell.drifted:
        # 1 -> light red, 3+ -> deep red
        t = min(max((cell.level - 1) / 2, 0.0), 1.0)
        r, g, b = _mix((252, 187, 161), (203, 24, 29), t)
    else:
        t = min(max(cell.level, 0.0), 1.0)
        r, g, b = _mix((244, 246, 249), (198, 210, 226), t)
    return f"rgb({r},{g},{b})"


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    cells: Sequence[Sequence[HeatCell | None]],
    *,
    label: str,
) -> str:
    """Rows (features) by columns (windows); drifted cells red, the rest pale blue-grey."""
    left = min(max((max((len(r) for r in rows), default=4)) * 6 + 12, 60), 150)
    cell_w = max(min(56.0, 560 / max(len(columns), 1)), 22.0)
    cell_h, top = 20, 30
    width = math.ceil(left + cell_w * len(columns) + 6)
    height = top + cell_h * len(rows) + 4
    body: list[str] = []
    every = max(1, math.ceil(len(columns) / (width / 44)))
    for j, name in enumerate(columns):
        if j % every == 0 or j == len(columns) - 1:
            body.append(_text(left + cell_w * (j + 0.5), top - 8, name, size=9, color=_AXIS))
    for i, name in enumerate(rows):
        y = top + cell_h * i
        shown = name if len(name) <= 24 else name[:23] + "…"
        body.append(_text(left - 6, y + cell_h * 0.68, shown, anchor="end"))
        for j, cell in enumerate(cells[i]):
            x = left + cell_w * j
            if cell is None:
                body.append(
                    f'<rect x="{x + 1:.1f}" y="{y + 1}" width="{cell_w - 2:.1f}" '
                    f'height="{cell_h - 2}" fill="none" stroke="{_GRID}"/>'
                )
                continue
            body.append(
                f'<rect x="{x + 1:.1f}" y="{y + 1}" width="{cell_w - 2:.1f}" '
                f'height="{cell_h - 2}" rx="2" fill="{_heat_colour(cell)}">'
                f"<title>{escape(cell.tooltip)}</title></rect>"
            )
            if cell_w >= 34:
                colour = "#ffffff" if cell.drifted and cell.level > 1.6 else _TEXT
                body.append(
                    _text(
                        x + cell_w / 2,
                        y + cell_h * 0.68,
                        cell.text,
                        size=9,
                        color=colour,
                        weight="bold" if cell.drifted else "normal",
                    )
                )
    return _svg(width, height, body, label, max_scale=1.3, min_scale=0.85)


@dataclass(frozen=True)
class LineSeries:
    name: str
    values: Sequence[float | None]
    colour: str
    dashed: bool = False


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[LineSeries],
    *,
    label: str,
    bars: Sequence[float | None] | None = None,
    bars_label: str = "",
    y_label: str = "",
    percent: bool = False,
) -> str:
    """Lines over windows; optional light bars behind them on a 0–100% right-hand axis
    (left out when there is no bar to draw)."""
    if bars is not None and all(share is None for share in bars):
        bars = None
    width, height = 460, 210
    left, right, top, bottom = 46, 44 if bars is not None else 12, 18, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(x_labels)
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if percent:
        low, high = min(low, 0.0), max(high, 0.0)
    pad = (high - low) * 0.15 or max(abs(high) * 0.1, 0.05)
    ticks = nice_ticks(low - pad, high + pad, 5)
    y_low, y_high = (ticks[0], ticks[-1]) if len(ticks) > 1 else (low - pad, high + pad)

    def x_of(i: int) -> float:
        return left + plot_w * ((i + 0.5) / n if n else 0.5)

    def y_of(value: float) -> float:
        return top + plot_h * (1 - (value - y_low) / ((y_high - y_low) or 1))

    body = _y_axis(ticks, y_of, left, width - right, y_label, percent=percent, size=11)
    if bars is not None:
        slot = plot_w / max(n, 1)
        for i, share in enumerate(bars):
            if share is None:
                continue
            h = plot_h * min(max(share, 0.0), 1.0)
            body.append(
                f'<rect x="{left + slot * i + slot * 0.2:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{slot * 0.6:.1f}" height="{h:.1f}" fill="{_AXIS}" fill-opacity="0.22">'
                f"<title>{escape(x_labels[i])}: {escape(bars_label)} {_pct(share)}</title></rect>"
            )
        for share in (0.0, 0.5, 1.0):
            y = top + plot_h * (1 - share)
            body.append(_text(width - right + 4, y + 3, _pct(share), anchor="start", color=_AXIS))
        body.append(_text(width - 2, 10, bars_label, anchor="end", size=9, color=_AXIS))
    for s in series:
        path: list[str] = []
        dots: list[str] = []
        for i, value in enumerate(s.values):
            if value is None or not math.isfinite(value):
                continue
            x, y = x_of(i), y_of(value)
            path.append(f"{'L' if path else 'M'}{x:.1f},{y:.1f}")
            dots.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.colour}">'
                f"<title>{escape(x_labels[i])}: {escape(s.name)} {fmt(value, 4)}</title></circle>"
            )
        if path:
            dash = ' stroke-dasharray="5 4"' if s.dashed else ""
            body.append(
                f'<path d="{"".join(path)}" fill="none" stroke="{s.colour}" stroke-width="2"'
                f"{dash}/>"
            )
        body.extend(dots)
    body.extend(_x_labels(x_labels, x_of, top + plot_h + 16, plot_w))
    return _svg(width, height, body, label)


def _x_labels(
    labels: Sequence[str], x_of: Callable[[int], float], y: float, plot_w: float
) -> list[str]:
    every = max(1, math.ceil(len(labels) / max(plot_w / 56, 1)))
    return [
        _text(x_of(i), y, text, size=11, color=_AXIS)
        for i, text in enumerate(labels)
        if i % every == 0 or i == len(labels) - 1
    ]


def stacked_bars(
    x_labels: Sequence[str], stacks: Sequence[tuple[str, Sequence[float]]], *, label: str
) -> str:
    """Counts per window, stacked by group (model versions)."""
    width, height = 460, 210
    left, right, top, bottom = 52, 12, 14, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(x_labels)
    totals = [sum(values[i] for _, values in stacks) for i in range(n)]
    ticks = nice_ticks(0, max([*totals, 1.0]), 4)
    y_max = max(ticks[-1], max(totals, default=1.0), 1.0)

    def y_of(value: float) -> float:
        return top + plot_h * (1 - value / y_max)

    def x_of(i: int) -> float:
        return left + plot_w * (i + 0.5) / max(n, 1)

    body = _y_axis(ticks, y_of, left, width - right, "predictions", size=11)
    slot = plot_w / max(n, 1)
    for i in range(n):
        base = 0.0
        for k, (name, values) in enumerate(stacks):
            value = values[i]
            if value <= 0:
                continue
            y0, y1 = y_of(base), y_of(base + value)
            body.append(
                f'<rect x="{left + slot * i + slot * 0.15:.1f}" y="{y1:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{y0 - y1:.1f}" '
                f'fill="{_PALETTE[k % len(_PALETTE)]}">'
                f"<title>{escape(x_labels[i])}: {escape(name)} {value:,.0f}</title></rect>"
            )
            base += value
    body.extend(_x_labels(x_labels, x_of, top + plot_h + 16, plot_w))
    return _svg(width, height, body, label)


def palette(index: int) -> str:
    return _PALETTE[index % len(_PALETTE)]
