"""The model page on a real server on loopback, over a project monitored for real (the
no-time-column project of `tests/monitoring/untimed.py`, SQLite and PostgreSQL): the
performance chart is drawn over windows of one length, labelled by their dates, with label
coverage as bars; and the release history carries the retraining decision with its scores.
With KEEL_SCREENSHOTS set, Debian's chromium draws the page at laptop and phone widths."""

from __future__ import annotations

import os
import re
import shutil
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from keel.monitoring.charts import LineSeries, line_chart
from keel.monitoring.feedback import ingest
from keel.monitoring.service import WindowPlan, monitor
from keel.project import Project
from keel.retraining.service import retrain
from keel.web.server import run_in_thread
from keel.web.ui import create_ui
from tests.fixtures.untimed import UntimedProject
from tests.monitoring.untimed import MODEL, log_requests, raw_rows, spec
from tests.monitoring.untimed import write_spec as write_untimed

DAY = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 8
ROWS = 100
LABELLED = 60  # of each day's predictions


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"KEEL_USER": "ana"}
    if request.param == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    return env


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback
        text: str = answer.read().decode()
        return text


def _monitored(folder: Path, env: dict[str, str]) -> None:
    """v1 in production for eight days of traffic, 60% of it labelled; monitored by day,
    then once more in 6-hour windows (another window length in the same store); then a
    retraining pass with new params, which decides on the same labelled rows."""
    labels = raw_rows()["late"]
    with Project.open(folder, env=env) as project:
        project.metadata.releases.move_alias(
            MODEL, "production", 1, expected_holder=None, actor="ana", reason="test"
        )
        for day in range(DAYS):
            start = day * ROWS
            ids = log_requests(project, DAY + timedelta(days=day, hours=9), ROWS, start=start)
            known = labels.slice(start, LABELLED)
            ingest(project, pa.table({"prediction_id": ids[:LABELLED], "label": known}))
        now = DAY + timedelta(days=DAYS)
        monitor(project, now=now)
        monitor(project, plan=WindowPlan(duration=timedelta(hours=6)), now=now)
    document = spec(freshness={"predictions": None, "data": False})
    document["training"]["params"] = {"max_iter": 40}
    write_untimed(folder, document)
    with Project.open(folder, env=env) as project:
        outcome = retrain(project, if_triggered=False, now=DAY + timedelta(days=DAYS))
        assert outcome.comparison is not None and outcome.event is not None


def test_performance_by_window_date_with_coverage_bars_and_retraining_in_the_history(
    env: dict[str, str], untimed_project: UntimedProject, tmp_path: Path
) -> None:
    folder = untimed_project(
        tmp_path / "untimed", env, freshness={"predictions": None, "data": False}
    )
    _monitored(folder, env)
    with Project.open(folder, env=env) as project, run_in_thread(create_ui(project)) as url:
        page = _get(f"{url}/models/{MODEL}")
        monitoring = _get(f"{url}/models/{MODEL}/monitoring")
        [decided] = project.metadata.audit.events(kinds=["retraining.decided"])
        if env.get("KEEL_DB_URL") is None:
            _screenshots(url, tmp_path)
    chart = page[page.index("Performance over time") :]
    chart = chart[: chart.index("</svg>")]
    # One point per day, labelled with its date; the 6-hour windows are not mixed in.
    days = [(DAY + timedelta(days=d)).strftime("%m-%d") for d in range(DAYS)]
    # (every other label, and the last: as many as fit the axis)
    assert re.findall(r">(\d\d-\d\d)</text>", chart) == [*days[::2], days[-1]]
    assert "#1" not in chart and ">03-01 09:00<" not in chart
    # (the 6-hour run looked back over its 14 windows: the last 3.5 days, 4 of them with rows)
    assert "One point per 1d window, at its start; 4 window(s) of other lengths not drawn" in page
    assert chart.count("<circle") == DAYS
    # Label coverage as bars, one per window, on its own axis.
    bars = re.findall(r"<title>(\d\d-\d\d): label coverage (\d+)%</title></rect>", chart)
    assert bars == [(day, "60") for day in days]
    # The release history has the retraining decision, with its scores.
    comparison = decided.evidence["comparison"]
    decision = decided.evidence["decision"]
    assert "<code>retraining.decided</code>" in page
    text = re.sub(r"<[^>]+>", "", page)
    assert (
        f"decision: {decision}; roc_auc: challenger v{comparison['challenger']['version']} "
        f"{comparison['challenger']['value']:.4g}, champion v1 "
        f"{comparison['champion']['value']:.4g}, improvement {comparison['improvement']:+.4g}"
    ) in text
    # The monitoring page's chart reads the same windows.
    assert "One point per 1d window, at its start" in monitoring


def test_a_chart_without_coverage_draws_no_coverage_axis() -> None:
    svg = line_chart(
        ["03-01", "03-02"],
        [LineSeries("v1 roc_auc", [0.7, 0.72], "#4c78a8")],
        bars=[None, None],
        bars_label="label coverage",
        label="roc_auc per window",
    )
    assert "label coverage" not in svg and ">100%<" not in svg and "<rect" not in svg


def _screenshots(url: str, tmp_path: Path) -> None:
    """The model page in Debian's chromium at laptop and phone widths: nothing wider than
    the window, and a PNG of each in KEEL_SCREENSHOTS (or the test's folder)."""
    if "KEEL_SCREENSHOTS" not in os.environ:
        return
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/setup installs them)")
    from selenium.webdriver.chrome.service import Service

    shots = Path(os.environ.get("KEEL_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    try:
        for size, (width, height) in {"laptop": (1366, 900), "phone": (390, 844)}.items():
            for name, path in (("model", f"/models/{MODEL}"), ("monitoring", "/monitoring")):
                driver.set_window_size(width, height)
                target = f"{url}/models/{MODEL}/monitoring" if name == "monitoring" else url + path
                driver.get(target)
                overflow = driver.execute_script(
                    "return document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 0, f"{name} is {overflow}px wider than the {size} window"
                full = driver.execute_script("return document.body.scrollHeight")
                driver.set_window_size(width, min(max(height, full + 120), 6000))
                driver.find_element("tag name", "body").screenshot(
                    str(shots / f"untimed-{name}-{size}.png")
                )
    finally:
        driver.quit()


def test_window_labels_are_dates_for_days_and_never_ordinals() -> None:
    from keel.web.pages import _window_labels

    def days(*starts: datetime) -> list[tuple[datetime, datetime]]:
        return [(s, s + timedelta(days=1)) for s in starts]

    assert _window_labels(days(DAY, DAY + timedelta(days=1))) == ["03-01", "03-02"]
    new_year = datetime(2025, 12, 31, tzinfo=UTC)
    assert _window_labels(days(new_year, DAY)) == ["2025-12-31", "2026-03-01"]
    hours = [(DAY + timedelta(hours=h), DAY + timedelta(hours=h + 6)) for h in (0, 6)]
    assert _window_labels(hours) == ["03-01 00:00", "03-01 06:00"]
    # Windows of rows a few seconds apart: the time to the second, short enough for a
    # heatmap column; the date too when they span days.
    rows = [(DAY + timedelta(seconds=s), DAY + timedelta(seconds=s + 5)) for s in (4, 12)]
    assert _window_labels(rows) == ["00:00:04", "00:00:12"]
    later = DAY + timedelta(days=1)
    assert _window_labels([*rows, (later, later)]) == [
        "03-01 00:00:04",
        "03-01 00:00:12",
        "03-02 00:00:00",
    ]
