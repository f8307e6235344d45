"""Form posts to the UI come only from its own pages: a real server on loopback, raw requests
as another site's page would make them (`Origin: http://evil.example`), sign-in included
(login CSRF needs no cookie, so SameSite and the CSRF value cannot stop it)."""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from keel.project import Project
from keel.web.server import run_in_thread
from keel.web.ui import create_ui

EVIL = "http://evil.example"


@dataclass(frozen=True)
class Ui:
    host: str
    port: int
    token: str
    project: Project

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def post(
        self, path: str, form: dict[str, str], headers: dict[str, str]
    ) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        body = urllib.parse.urlencode(form)
        sent = {"Content-Type": "application/x-www-form-urlencoded", **headers}
        connection.request("POST", path, body, sent)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response

    def signed_in(self) -> str:
        """The session cookie of a sign-in from the UI's own page."""
        answer = self.post("/signin", {"token": self.token}, {"Origin": self.origin})
        assert answer.status == 303
        return SimpleCookie(answer.headers["set-cookie"])["keel_session"].value


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    folder: Path = tmp_path_factory.mktemp("origin")
    with Project.init(folder, env={"KEEL_USER": "root"}) as project:
        project.metadata.identities.add_user("ben", ["approver"], actor="root")
        token = project.metadata.identities.create_token("ben", actor="root")
        with run_in_thread(create_ui(project)) as url:
            parts = urllib.parse.urlsplit(url)
            assert parts.hostname is not None and parts.port is not None
            yield Ui(parts.hostname, parts.port, token, project)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "null"},  # a sandboxed frame or a file
        {"Referer": f"{EVIL}/lure.html"},  # a browser that sends no Origin
        {"Origin": "https://127.0.0.1.evil.example"},
    ],
)
def test_sign_in_from_another_origin_is_refused(ui: Ui, headers: dict[str, str]) -> None:
    answer = ui.post("/signin", {"token": ui.token, "next": "/"}, headers)

    assert answer.status == 403
    assert answer.headers["set-cookie"] is None  # nobody was signed in
    page = ui.post("/signin", {"token": ui.token}, headers)
    assert page.status == 403


def test_the_refusal_names_the_rule(ui: Ui) -> None:
    connection = http.client.HTTPConnection(ui.host, ui.port, timeout=60)
    body = urllib.parse.urlencode({"token": ui.token})
    connection.request(
        "POST",
        "/signin",
        body,
        {"Content-Type": "application/x-www-form-urlencoded", "Origin": EVIL},
    )
    text = connection.getresponse().read().decode()
    connection.close()
    assert "form posts are accepted only from this server&#39;s own pages" in text
    assert "evil.example" in text


def test_every_form_post_checks_the_origin_even_signed_in(ui: Ui) -> None:
    cookie = ui.signed_in()
    headers = {"Origin": EVIL, "Cookie": f"keel_session={cookie}"}
    for path in ("/signout", "/requests/0123456789abcdef/approve", "/requests/x/reject"):
        assert ui.post(path, {"csrf": "0" * 32}, headers).status == 403, path


def test_own_pages_sign_in_with_a_strict_http_only_cookie(ui: Ui) -> None:
    for headers in ({"Origin": ui.origin}, {"Referer": f"{ui.origin}/signin"}, {}):
        answer = ui.post("/signin", {"token": ui.token, "next": "/"}, headers)
        assert (answer.status, answer.headers["location"]) == (303, "/"), headers
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # plain HTTP: a Secure cookie would never come back


def test_behind_https_the_cookie_is_secure_and_the_https_origin_is_own(ui: Ui) -> None:
    https = f"https://{ui.host}:{ui.port}"
    answer = ui.post(
        "/signin", {"token": ui.token}, {"Origin": https, "X-Forwarded-Proto": "https"}
    )

    assert answer.status == 303
    assert "secure" in answer.headers["set-cookie"].lower()
