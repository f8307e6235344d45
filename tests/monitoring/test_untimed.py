"""Monitoring a project whose data has no time column (`tests/monitoring/untimed.py`), on
SQLite and PostgreSQL: windows too small to judge say so and stay out of every verdict, a
window still filling is not judged for volume, and freshness is measured from what the data
has (the source file's modification time, else the newest snapshot's time), saying which.
"""

from __future__ import annotations

import os
import re
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keel.monitoring.service import monitor
from keel.project import Project
from keel.web.server import run_in_thread
from keel.web.ui import create_ui
from tests.fixtures.cli import Keel
from tests.fixtures.untimed import UntimedProject
from tests.monitoring.untimed import MODEL, log_requests, spec, write_spec

DAY = datetime(2026, 3, 1, tzinfo=UTC)
#: Rows logged per day: day 4 is too small to judge (min_rows is 50); day 6 is still open.
ROWS = [100, 110, 120, 10, 120, 55]
NOW = DAY + timedelta(days=5, hours=6)
NOT_JUDGED = "not judged: 10 rows, fewer than min_rows 50"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of each backend (for the API, and set for the CLI)."""
    env = {"KEEL_USER": "ana"}
    if request.param == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    return env


def _days(project: Project) -> None:
    for day, rows in enumerate(ROWS):
        hour = 2 if day == len(ROWS) - 1 else 9
        log_requests(project, DAY + timedelta(days=day, hours=hour), rows, start=day * 150)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback
        text: str = answer.read().decode()
        return text


def test_small_windows_are_not_judged_and_a_filling_window_is_not_a_traffic_drop(
    env: dict[str, str],
    untimed_project: UntimedProject,
    keel: Keel,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    folder = untimed_project(
        tmp_path / "untimed", env, freshness={"predictions": None, "data": False}
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KEEL_PROJECT", str(folder))
    with Project.open(folder, env=env) as project:
        _days(project)

    shown = keel("monitor", "--dry-run", "--json", "--now", NOW.isoformat())
    assert shown.code == 0, shown.err
    windows = shown.json()["windows"]
    assert [w["rows"] for w in windows] == ROWS
    small = windows[3]
    assert (small["judged"], small["not_judged"]) == (False, NOT_JUDGED)
    assert small["drift"] == [] and small["drifted"] == [] and small["performance"] is None
    assert {s["signal"] for s in small["signals"]} == {
        "predictions",
        "label_coverage",
        "not_judged",
        "volume",
    }
    # Too small to judge what it holds, but a complete day of 10 rows after days of 100 to
    # 120 is a traffic drop in itself: its volume is judged (10 over the median 110).
    [small_volume] = [s for s in small["signals"] if s["signal"] == "volume"]
    assert small_volume["value"] == pytest.approx(10 / 110)
    # Volume is judged against full, judged windows only: 120 over the median of 100, 110
    # and 120 (with the 10-row window in the baseline the median would be 105).
    volume = [s for s in windows[4]["signals"] if s["signal"] == "volume"]
    assert [(s["value"], s["detail"]["median"]) for s in volume] == [(120 / 110, 110)]
    # The newest day is still open at NOW: its 55 rows are no traffic drop.
    newest = windows[5]
    assert newest["judged"] and newest["partial"]
    assert not [s for s in newest["signals"] if s["signal"] == "volume"]
    assert all(not w["partial"] for w in windows[:5])

    report = tmp_path / "monitor.html"
    run = keel("monitor", "--now", NOW.isoformat(), "--report", report)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    [line] = [line for line in lines if line.startswith("  2026-03-04 00:00")]
    assert line.endswith(NOT_JUDGED) and "drifted" not in line
    [line] = [line for line in lines if line.startswith("  2026-03-06 00:00")]
    assert "drifted: " in line and line.endswith("partial window: volume not judged")
    html = report.read_text()
    assert "Windows not judged: 03-04 (not judged: 10 rows, fewer than min_rows 50)." in html

    with Project.open(folder, env=env) as project:
        # The newest volume judged is day 5's, back to normal: no traffic drop is open.
        alerts = project.metadata.monitoring.alerts(model=MODEL, state=None)
        assert "traffic-drop" not in {a.rule for a in alerts}
        stored = project.metadata.monitoring.metrics(MODEL, since=DAY)
        small_day = (DAY + timedelta(days=3), DAY + timedelta(days=4))
        assert {m.signal for m in stored if (m.window_start, m.window_end) == small_day} == {
            "predictions",
            "label_coverage",
            "not_judged",
            "volume",
        }
        # A newest window of 5 rows: the UI's headline says it was not judged, and the
        # drift it reports is the newest judged window's.
        log_requests(project, DAY + timedelta(days=6, hours=1), 5, start=1000)
        later = monitor(project, now=DAY + timedelta(days=6, hours=2))
        assert later.windows[-1].not_judged == "not judged: 5 rows, fewer than min_rows 50"
        assert later.latest_judged is not None
        assert later.latest_judged.start == DAY + timedelta(days=5)
        with run_in_thread(create_ui(project)) as url:
            page = _get(f"{url}/models/{MODEL}/monitoring")
    text = re.sub(r"<[^>]+>", "", page)
    assert (
        "Newest window 2026-03-07 00:00 UTC – 2026-03-08 00:00 UTC: "
        "not judged: 5 rows, fewer than min_rows 50."
    ) in text
    assert "Newest judged window 2026-03-06 00:00 UTC – 2026-03-07 00:00 UTC:" in text


def test_traffic_that_collapses_below_min_rows_is_a_traffic_drop(
    env: dict[str, str], untimed_project: UntimedProject, tmp_path: Path
) -> None:
    # Days of 100 to 120 requests, then a whole day of 10: too few rows to judge drift or
    # quality, and exactly what a broken upstream client looks like.
    folder = untimed_project(
        tmp_path / "untimed", env, freshness={"predictions": None, "data": False}
    )
    with Project.open(folder, env=env) as project:
        for day, rows in enumerate([100, 110, 120, 10]):
            log_requests(project, DAY + timedelta(days=day, hours=9), rows, start=day * 150)
        report = monitor(project, now=DAY + timedelta(days=4, hours=6))
        assert report.windows[-1].not_judged == NOT_JUDGED
        assert not report.windows[-1].partial
        [drop] = [a for a in report.opened if a.rule == "traffic-drop"]
        assert drop.value == pytest.approx(10 / 110)
        assert drop.message == "volume is 0.09091, below 0.5"


def test_freshness_without_a_time_column_is_the_source_files_age(
    env: dict[str, str], untimed_project: UntimedProject, tmp_path: Path
) -> None:
    folder = untimed_project(tmp_path / "untimed", env, freshness={"predictions": None})
    now = datetime.now(UTC)
    with Project.open(folder, env=env) as project:
        log_requests(project, now - timedelta(hours=1), 60)
        # `data: true` and no time column: measured and said, with no limit to hold it to.
        [age] = [s for s in monitor(project, record=False).freshness if s.name == "data_age"]
        assert age.detail["measured_from"] == "the source file's modification time"
        assert (age.limit, age.breached) == (None, False)

    write_spec(folder, spec(freshness={"predictions": None, "data": "2d"}))
    three_days = (now - timedelta(days=3)).timestamp()
    os.utime(folder / "raw.csv", (three_days, three_days))
    with Project.open(folder, env=env) as project:
        report = monitor(project)
        [age] = [s for s in report.freshness if s.name == "data_age"]
        assert age.value == pytest.approx(3 * 86400, abs=600)
        assert (age.limit, age.breached) == (2 * 86400, True)
        assert age.detail["newest"].startswith((now - timedelta(days=3)).date().isoformat())
        [alert] = [a for a in report.opened if a.rule == "stale-data"]
        assert "(from the source file's modification time)" in alert.message
        # An age reads as a duration, not as seconds.
        assert alert.message.startswith("data_age is 3d")
        assert alert.message.endswith(", above 2d")
        assert alert.evidence["signal"]["detail"]["measured_from"] == (
            "the source file's modification time"
        )

        # The file gone, the newest snapshot's time is what is left to measure.
        (folder / "raw.csv").unlink()
        [age] = [s for s in monitor(project, record=False).freshness if s.name == "data_age"]
        snapshot = project.metadata.datasets.list(limit=1)[0]
        assert age.detail["measured_from"] == "the dataset's newest snapshot time"
        assert age.detail["newest"] == snapshot.created_at.astimezone(UTC).isoformat()
