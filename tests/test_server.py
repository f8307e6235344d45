"""`keel.server`: one port serves inference, the registry API and the web UI, with one
token check, on a real uvicorn server on loopback, over SQLite and PostgreSQL."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keel.project import Project
from keel.server import create_app, create_ui_app
from keel.web.server import run_in_thread

SPEC = "version: 1\nname: server-test\nowners: {release: root}\n"


@dataclass
class Answer:
    status: int
    content_type: str
    challenge: str
    body: bytes


def _call(url: str, *, token: str | None = None, body: bytes | None = None) -> Answer:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return Answer(
                response.status, response.headers.get("content-type", ""), "", response.read()
            )
    except urllib.error.HTTPError as error:
        return Answer(
            error.code,
            error.headers.get("content-type", ""),
            error.headers.get("WWW-Authenticate", ""),
            error.read(),
        )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    env = {"KEEL_USER": "root"}
    if request.param == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    Project.init(tmp_path, env=env).close()
    (tmp_path / "keel.yaml").write_text(SPEC)
    with Project.open(tmp_path, env=env) as opened:
        yield opened


def _tokens(project: Project) -> dict[str, str]:
    identities = project.metadata.identities
    identities.add_user("vi", ["viewer"], actor="root")
    identities.add_user("lee", ["labeler"], actor="root")
    return {name: identities.create_token(name, actor="root") for name in ("vi", "lee")}


def test_one_port_serves_inference_the_api_and_the_ui_with_one_token_check(
    project: Project,
) -> None:
    tokens = _tokens(project)
    app, _ = create_app(project, ui=True)
    with run_in_thread(app) as url:
        assert _call(f"{url}/v2/health/live").status == 200

        whoami = _call(f"{url}/api/v1/whoami", token=tokens["vi"])
        assert whoami.status == 200 and json.loads(whoami.body)["user"]["name"] == "vi"

        # The same token means the same on the API and on serving's own write, /v1/feedback.
        for path in ("/api/v1/whoami", "/v1/feedback"):
            anonymous = _call(url + path, body=b"{}" if "feedback" in path else None)
            assert anonymous.status == 401, path
            assert anonymous.challenge.startswith('Bearer realm="keel"'), path
        viewer = _call(f"{url}/v1/feedback", token=tokens["vi"], body=b'{"feedback": []}')
        assert viewer.status == 403 and b"label" in viewer.body
        labeler = _call(f"{url}/v1/feedback", token=tokens["lee"], body=b'{"feedback": []}')
        assert labeler.status != 401 and labeler.status != 403, labeler.body

        page = _call(f"{url}/ui/")
        assert page.status == 200 and page.content_type.startswith("text/html")


def test_the_api_and_the_ui_are_mounted_only_when_asked(project: Project) -> None:
    tokens = _tokens(project)
    app, _ = create_app(project, api=False)
    with run_in_thread(app) as url:
        assert _call(f"{url}/v2/health/live").status == 200
        assert _call(f"{url}/api/v1/whoami", token=tokens["vi"]).status == 404
        assert _call(f"{url}/ui/").status == 404
        # Serving's own write keeps its token check without the API mounted.
        assert _call(f"{url}/v1/feedback", body=b"{}").status == 401


def test_keel_ui_serves_the_ui_alone(project: Project) -> None:
    with run_in_thread(create_ui_app(project)) as url:
        page = _call(f"{url}/")
        assert page.status == 200 and page.content_type.startswith("text/html")
        assert _call(f"{url}/v2/health/live").status == 404
