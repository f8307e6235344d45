"""The web UI on a real server on loopback, over a project the demo filled: plain HTTP, then
Debian's chromium headless through Selenium, with a screenshot of every page."""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keel.demo import run_demo
from keel.project import Project
from keel.web.server import run_in_thread
from keel.web.ui import create_ui

MODEL = "flights-delay"
#: Well formed (UUIDv7 layout) and never logged.
UNKNOWN_ID = "01a21a4aef9777f185b16f0000000000"


@dataclass(frozen=True)
class Site:
    url: str
    project: Project
    prediction: str


@dataclass(frozen=True)
class Page:
    status: int
    text: str
    content_type: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("ui") / "flights"
    result = run_demo(folder, say=lambda _: None)
    assert result.prediction is not None
    with Project.open(folder) as project, run_in_thread(create_ui(project)) as url:
        yield Site(url, project, result.prediction)


def get(site: Site, path: str) -> Page:
    try:
        with urllib.request.urlopen(site.url + path, timeout=30) as answer:  # noqa: S310 - loopback
            return Page(answer.status, answer.read().decode(), answer.headers["content-type"])
    except urllib.error.HTTPError as error:
        return Page(error.code, error.read().decode(), error.headers["content-type"])


def test_home_shows_each_model_with_its_aliases_alerts_and_health(site: Site) -> None:
    page = get(site, "/")
    assert page.status == 200
    assert page.content_type.startswith("text/html")
    assert MODEL in page.text
    production = site.project.metadata.releases.holder(MODEL, "production")
    assert production is not None
    assert "production" in page.text
    assert f"/models/{MODEL}/versions/{production}" in page.text
    assert "open alert" in page.text
    assert "last monitored" in page.text
    assert '<link rel="stylesheet" href="/static/keel.css">' in page.text


def test_model_page_lists_versions_history_and_pending_requests(site: Site) -> None:
    page = get(site, f"/models/{MODEL}")
    assert page.status == 200
    for version in site.project.metadata.models.versions(MODEL):
        assert f">v{version.version}</a>" in page.text
    assert "Release history" in page.text
    assert "alias.moved" in page.text
    for request in site.project.metadata.releases.requests(status="pending", model=MODEL):
        assert request.id[:12] in page.text


def test_version_page_draws_lineage_and_gates(site: Site) -> None:
    production = site.project.metadata.releases.holder(MODEL, "production")
    page = get(site, f"/models/{MODEL}/versions/{production}")
    assert page.status == 200
    for node in ("Dataset", "Run", "Model", "Aliases"):
        assert f"<h3>{node}</h3>" in page.text
    assert "Latest gate evaluation" in page.text
    assert "metric_threshold" in page.text


def test_prediction_lookup_shows_its_chain(site: Site) -> None:
    prediction = site.project.metadata.predictions.get(site.prediction)
    assert prediction is not None
    page = get(site, f"/predictions?id={site.prediction}")
    assert page.status == 200
    assert prediction.ref in page.text
    assert "Release" in page.text
    assert get(site, "/predictions").status == 200  # the empty form


def test_alerts_page_names_owners(site: Site) -> None:
    alerts = site.project.metadata.monitoring.alerts(state="open")
    assert alerts
    page = get(site, "/alerts")
    assert page.status == 200
    owners = {alert.owner for alert in alerts if alert.owner}
    assert owners
    assert all(owner in page.text for owner in owners)


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/models/no-such-model", 404, "no model"),
        (f"/models/{MODEL}/versions/999", 404, "Not found"),
        (f"/models/{MODEL}/versions/x", 404, "not a version number"),
        (f"/predictions?id={UNKNOWN_ID}", 404, f"no prediction {UNKNOWN_ID}"),
        ("/predictions?id=nonsense", 400, "is not a prediction id"),
        ("/no/such/page", 404, "no such page"),
    ],
)
def test_errors_are_pages_with_a_message(site: Site, path: str, status: int, message: str) -> None:
    page = get(site, path)
    assert page.status == status
    assert page.content_type.startswith("text/html")
    assert message in page.text


def test_text_from_the_stores_is_escaped(site: Site) -> None:
    page = get(site, "/models/%3Cscript%3E")
    assert page.status in (400, 404)
    assert "<script>" not in page.text


def test_the_stylesheet_ships_in_the_package(site: Site) -> None:
    page = get(site, "/static/keel.css")
    assert page.status == 200
    assert page.content_type.startswith("text/css")
    assert "@media" in page.text  # the phone layout


def test_every_page_in_a_real_browser(site: Site, tmp_path: Path) -> None:
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
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    production = site.project.metadata.releases.holder(MODEL, "production")
    pages = {
        "home": "/",
        "model": f"/models/{MODEL}",
        "version": f"/models/{MODEL}/versions/{production}",
        "prediction": f"/predictions?id={site.prediction}",
        "alerts": "/alerts",
    }
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    try:
        for size, (width, height) in {"laptop": (1366, 900), "phone": (390, 844)}.items():
            driver.set_window_size(width, height)
            for name, path in pages.items():
                driver.get(site.url + path)
                assert "keel" in driver.title
                body = driver.find_element("tag name", "body")
                # Nothing wider than the window: a phone never scrolls sideways.
                overflow = driver.execute_script(
                    "return document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 0, f"{name} is {overflow}px wider than the {size} window"
                full = driver.execute_script("return document.body.scrollHeight")
                driver.set_window_size(width, min(max(height, full + 120), 6000))
                body.screenshot(str(shots / f"{name}-{size}.png"))
                driver.set_window_size(width, height)
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert errors == [], errors
        # The lookup form works from the page itself.
        driver.get(site.url + "/predictions")
        field = driver.find_element("id", "id")
        field.send_keys(site.prediction)
        field.submit()
        assert site.prediction[:16] in driver.page_source
    finally:
        driver.quit()
    assert len(list(shots.glob("*.png"))) == 2 * len(pages)
