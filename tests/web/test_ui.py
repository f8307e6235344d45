"""The web UI on a real server on loopback, over a project the demo filled: plain HTTP
(pages, sign-in, decisions and their refusals), then Debian's chromium headless through
Selenium: every page at laptop and phone widths with a screenshot, and a release approved in
the page by a signed-in approver."""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from markupsafe import escape

from keel.domain.identity import Actor
from keel.project import Project
from keel.release import promote
from keel.web.server import run_in_thread
from keel.web.ui import create_ui
from tests.fixtures.demo import DemoRun, copy_demo

MODEL = "flights-delay"
#: Well formed (UUIDv7 layout) and never logged.
UNKNOWN_ID = "01a21a4aef9777f185b16f0000000000"


@dataclass(frozen=True)
class Site:
    url: str
    project: Project
    prediction: str
    tokens: dict[str, str]
    #: Pending when the module starts: ana asked for v1 on canary; the browser approves it.
    request: str


@dataclass(frozen=True)
class Page:
    status: int
    text: str
    content_type: str


@pytest.fixture(scope="module")
def site(demo_template: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    result = copy_demo(demo_template, tmp_path_factory.mktemp("ui") / "flights").result
    folder = result.folder
    assert result.prediction is not None
    with Project.open(folder) as project:
        identities = project.metadata.identities
        # ana may approve too: what stops her is that she asked, not her roles.
        users = {"ana": ["trainer", "approver"], "ben": ["approver"], "vi": ["viewer"]}
        for name, roles in users.items():
            identities.add_user(name, roles, actor="root")  # type: ignore[arg-type]
        tokens = {name: identities.create_token(name, actor="root") for name in users}
        asked = promote(project, f"{MODEL}@1", "canary", actor=Actor("ana"), reason="again")
        assert asked.outcome == "pending" and asked.request is not None
        with run_in_thread(create_ui(project)) as url:
            yield Site(url, project, result.prediction, tokens, asked.request.id)


def get(site: Site, path: str) -> Page:
    try:
        with urllib.request.urlopen(site.url + path, timeout=30) as answer:  # noqa: S310 - loopback
            return Page(answer.status, answer.read().decode(), answer.headers["content-type"])
    except urllib.error.HTTPError as error:
        return Page(error.code, error.read().decode(), error.headers["content-type"])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Client:
    """A browser without the browser: keeps cookies, does not follow redirects."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect()
        )

    def call(self, path: str, form: dict[str, str] | None = None) -> tuple[Page, str | None]:
        data = None if form is None else urllib.parse.urlencode(form).encode()
        try:
            with self.opener.open(self.site.url + path, data=data, timeout=60) as answer:
                text = answer.read().decode()
                return Page(answer.status, text, answer.headers["content-type"]), None
        except urllib.error.HTTPError as error:
            page = Page(error.code, error.read().decode(), error.headers["content-type"] or "")
            return page, error.headers.get("location")

    def sign_in(self, user: str) -> None:
        page, location = self.call("/signin", {"token": self.site.tokens[user], "next": "/"})
        assert (page.status, location) == (303, "/")

    def csrf(self, path: str) -> str:
        page, _ = self.call(path)
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert found, "no form with a CSRF value on " + path
        return found.group(1)


def _decisions(site: Site) -> int:
    return len(site.project.metadata.audit.events(kinds=["release.approved", "release.rejected"]))


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
    assert "1 release waiting for approval" in page.text  # ana's request, until ben decides
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


def test_requests_page_lists_the_pending_request_and_invites_sign_in(site: Site) -> None:
    page = get(site, "/requests")
    assert page.status == 200
    assert site.request[:12] in page.text
    # Each names its owner, as `keel requests list` does (the project's release owner).
    (pending,) = site.project.requests(status="pending").requests
    assert pending.owner is not None
    row = page.text.split(site.request[:12], 1)[1].split("</tr>", 1)[0]
    assert f"owner {pending.owner}" in row
    detail = get(site, f"/requests/{site.request}")
    assert detail.status == 200
    assert "Sign in to approve or reject" in detail.text
    assert "contract_passed" in detail.text  # the gates the request was opened on
    assert 'id="approve"' not in detail.text


def test_signed_out_post_is_refused_and_changes_nothing(site: Site) -> None:
    before = _decisions(site)
    page, _ = Client(site).call(f"/requests/{site.request}/approve", {"csrf": "x"})
    assert page.status == 403
    assert "sign in first" in page.text
    assert _decisions(site) == before
    assert site.project.metadata.releases.request(site.request).status == "pending"


def test_a_wrong_token_does_not_sign_in(site: Site) -> None:
    client = Client(site)
    page, location = client.call("/signin", {"token": "keel_0000000000000000_nope", "next": "/"})
    assert page.status == 401
    assert "not valid" in page.text
    assert location is None
    assert not list(client.cookies)


def test_sign_in_never_redirects_off_site(site: Site) -> None:
    client = Client(site)
    form = {"token": site.tokens["ben"], "next": "//evil.example/"}
    _, location = client.call("/signin", form)
    assert location == "/"


def test_the_requester_cannot_approve_their_own_request(site: Site) -> None:
    client = Client(site)
    client.sign_in("ana")
    detail, _ = client.call(f"/requests/{site.request}")
    assert "You requested this release, so you cannot decide it" in detail.text
    assert 'id="approve"' not in detail.text
    # Even a hand-made post is refused, by the release rules themselves.
    before = _decisions(site)
    csrf = client.csrf("/signin")  # any page signed in carries the sign-out form
    page, _ = client.call(f"/requests/{site.request}/approve", {"csrf": csrf})
    assert page.status == 403
    assert "cannot decide it" in page.text
    assert _decisions(site) == before
    assert site.project.metadata.releases.request(site.request).status == "pending"


def test_a_viewer_cannot_approve(site: Site) -> None:
    client = Client(site)
    client.sign_in("vi")
    detail, _ = client.call(f"/requests/{site.request}")
    assert "has no approver role" in detail.text
    csrf = client.csrf("/signin")
    page, _ = client.call(f"/requests/{site.request}/approve", {"csrf": csrf})
    assert page.status == 403
    assert "needs one of the roles" in page.text
    assert site.project.metadata.releases.request(site.request).status == "pending"


def test_a_forged_form_is_refused(site: Site) -> None:
    client = Client(site)
    client.sign_in("ben")
    before = _decisions(site)
    page, _ = client.call(f"/requests/{site.request}/approve", {"csrf": "0" * 32})
    assert page.status == 400
    assert "stale or came from another page" in page.text
    assert _decisions(site) == before


def test_reject_in_the_page_is_recorded_with_its_comment(site: Site) -> None:
    asked = promote(site.project, f"{MODEL}@3", "canary", actor=Actor("ana"), reason="stump")
    assert asked.request is not None
    client = Client(site)
    client.sign_in("ben")
    csrf = client.csrf(f"/requests/{asked.request.id}")
    form = {"csrf": csrf, "comment": "one tree is not a model"}
    page, location = client.call(f"/requests/{asked.request.id}/reject", form)
    assert page.status == 303
    assert location == f"/requests/{asked.request.id}?done=rejected"
    assert site.project.metadata.releases.request(asked.request.id).status == "rejected"
    event = site.project.metadata.audit.events(kinds=["release.rejected"], newest_first=True)[0]
    assert (event.actor, event.subject) == ("ben", asked.request.id)
    shown, _ = client.call(location)
    assert "You rejected this request" in shown.text
    assert "one tree is not a model" in shown.text


def test_sign_out_forgets_the_session(site: Site) -> None:
    client = Client(site)
    client.sign_in("ben")
    assert ">ben</span>" in client.call("/")[0].text
    page, location = client.call("/signout", {"csrf": client.csrf("/")})
    assert (page.status, location) == (303, "/")
    assert "Sign in" in client.call("/")[0].text
    assert not any(cookie.value for cookie in client.cookies)


def test_monitoring_page_draws_drift_performance_and_distributions(site: Site) -> None:
    page = get(site, f"/models/{MODEL}/monitoring")
    assert page.status == 200
    assert "Drift by feature over time" in page.text
    assert "Performance over time" in page.text
    assert "Reference against the newest window" in page.text
    drifted = {
        m.subject.split(".", 1)[1]
        for m in site.project.metadata.monitoring.latest_metrics(MODEL)
        if m.signal == "drift" and m.detail.get("breached")
    }
    assert drifted
    assert all(f">{name}<" in page.text for name in drifted)
    assert page.text.count("<svg") >= 3
    assert get(site, "/models/no-such-model/monitoring").status == 404


def test_scorecard_page_shows_every_item_with_its_evidence(site: Site) -> None:
    from keel.maturity import scorecard

    card = scorecard(site.project)
    page = get(site, "/scorecard")
    assert page.status == 200
    assert f"{card.score}</strong> of {card.max_score}" in page.text
    assert card.level_name in page.text
    for item in card.items:
        assert str(escape(item.title)) in page.text
        assert str(escape(item.evidence)) in page.text


def test_keel_serve_mounts_the_ui_under_ui(site: Site) -> None:
    from keel.server import create_app

    app, _ = create_app(site.project, ui=True, api=False)
    with run_in_thread(app) as url:
        with urllib.request.urlopen(url + "/ui/", timeout=60) as answer:  # noqa: S310 - loopback
            text = answer.read().decode()
        assert '<link rel="stylesheet" href="/ui/static/keel.css">' in text
        assert f'href="/ui/models/{MODEL}"' in text
        with urllib.request.urlopen(url + "/ui/static/keel.css", timeout=60) as answer:  # noqa: S310
            assert answer.status == 200
        with urllib.request.urlopen(url + "/v2/health/live", timeout=60) as answer:  # noqa: S310
            assert answer.status == 200


def test_keel_ui_serves_until_sigterm(site: Site, tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    from tests.serving.support import KEEL, free_port

    port = free_port()
    folder = site.project.settings.project_dir
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    with (tmp_path / "stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [KEEL, "-C", folder, "ui", "--port", str(port), "--json"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
        try:
            assert process.stdout is not None
            assert f"http://127.0.0.1:{port}" in process.stdout.readline().decode()
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                        assert MODEL in answer.read().decode()
                        break
                except urllib.error.URLError:
                    assert process.poll() is None, (tmp_path / "stderr").read_text()
                    assert time.monotonic() < deadline, "keel ui did not answer within 60 s"
                    time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def test_every_page_in_a_real_browser(site: Site, tmp_path: Path) -> None:
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/setup installs them)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    shots = Path(os.environ.get("KEEL_SCREENSHOTS") or tmp_path)
    started = time.time()
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
        "monitoring": f"/models/{MODEL}/monitoring",
        "prediction": f"/predictions?id={site.prediction}",
        "alerts": "/alerts",
        "requests": "/requests",
        "request": f"/requests/{site.request}",
        "scorecard": "/scorecard",
        "signin": "/signin",
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
        driver.set_window_size(1366, 900)
        # The lookup form works from the page itself.
        driver.get(site.url + "/predictions")
        field = driver.find_element("id", "id")
        field.send_keys(site.prediction)
        field.submit()
        # submit() returns before the answer's page has loaded: wait for it (bounded).
        WebDriverWait(driver, 60).until(lambda page: "id=" in page.current_url)
        WebDriverWait(driver, 60).until(lambda page: site.prediction[:16] in page.page_source)
        # ben signs in from the request's page, approves it there, and the audit log has it.
        driver.get(site.url + f"/requests/{site.request}")
        driver.find_element("link text", "Sign in to approve or reject").click()
        driver.find_element("id", "token").send_keys(site.tokens["ben"])
        driver.find_element("id", "token").submit()
        back = site.url + f"/requests/{site.request}"
        WebDriverWait(driver, 60).until(lambda page: page.current_url == back)
        WebDriverWait(driver, 60).until(lambda page: page.find_elements("id", "comment"))
        driver.find_element("id", "comment").send_keys("checked the canary plan")
        driver.find_element("id", "approve").click()
        # The click returns before the answer's page has loaded: wait for it (bounded).
        WebDriverWait(driver, 60).until(lambda page: "You approved" in page.page_source)
        assert "You approved this request" in driver.page_source
        driver.find_element("tag name", "body").screenshot(str(shots / "approved-laptop.png"))
        driver.get(site.url + f"/models/{MODEL}")
        assert "release.approved" in driver.page_source
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        driver.quit()
    approved = site.project.metadata.audit.events(kinds=["release.approved"], newest_first=True)
    assert (approved[0].actor, approved[0].subject) == ("ben", site.request)
    assert site.project.metadata.releases.holder(MODEL, "canary") == 1
    # Every page at both widths, written now (the folder is shared with other tests in CI).
    taken = [f"{name}-{size}.png" for name in pages for size in ("laptop", "phone")]
    for name in [*taken, "approved-laptop.png"]:
        assert (shots / name).stat().st_mtime >= started - 1, name
