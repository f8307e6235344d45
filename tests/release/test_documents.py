"""The model documents: `keel models list|show --json` and `GET /api/v1/models[...]` give the
same document, built once (keel.release.documents), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.cli.main import main
from keel.project import Project
from keel.web import create_api
from keel.web.server import run_in_thread
from tests.web.test_api_auth import CONTRACT, _register

SPEC = "version: 1\nname: documents-test\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, str, str]]:
    env = {"KEEL_USER": "root"}
    if request.param == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    Project.init(tmp_path, env=env).close()
    (tmp_path / "keel.yaml").write_text(SPEC)
    with Project.open(tmp_path, env=env) as project:
        project.metadata.identities.add_user("vi", ["viewer"], actor="root")
        token = project.metadata.identities.create_token("vi", actor="root")
        _register(project, profiled=True)
        _register(project, profiled=False)
        releases = project.metadata.releases
        releases.move_alias(
            "flights", "staging", 1, expected_holder=None, actor="root", reason="test"
        )
        with run_in_thread(create_api(project)) as url:
            yield tmp_path, url, token


def _cli(folder: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main(["-C", str(folder), "models", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _api(url: str, token: str, path: str) -> Any:
    request = urllib.request.Request(  # noqa: S310 - an http:// URL on loopback
        url + path, headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def test_the_cli_and_the_api_give_the_same_model_documents(
    served: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, url, token = served

    listed = _cli(folder, capsys, "list")
    assert listed == _api(url, token, "/api/v1/models")
    (model,) = listed["models"]
    assert model["name"] == "flights" and model["latest_version"] == 2
    assert model["latest_status"] == "incomplete: it has no reference profile"

    shown = _cli(folder, capsys, "show", "flights")
    assert shown == _api(url, token, "/api/v1/models/flights")
    versions = shown["model"]["versions"]
    assert [v["version"] for v in versions] == [2, 1]  # newest first
    assert [v["status"] for v in versions] == ["incomplete: it has no reference profile", "usable"]
    assert set(versions[0]) == {
        "version", "run_id", "package", "flavor", "metrics", "aliases", "created_at",
        "created_by", "status",
    }  # fmt: skip

    one = _cli(folder, capsys, "show", "flights@1")
    assert one == _api(url, token, "/api/v1/models/flights/versions/1")
    assert one["version"]["inference_contract"] == CONTRACT
    assert one["version"]["status"] == "usable" and one["version"]["aliases"] == ["staging"]
    aliases = {"candidate": 2, "staging": 1}  # register() moves candidate to the newest
    assert shown["model"]["aliases"] == aliases and model["aliases"] == aliases
