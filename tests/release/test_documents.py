"""The model documents: `keel models list|show --json` and `GET /api/v1/models[...]` give the
same document, built once (keel.release.documents), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from keel.cli.main import main
from keel.domain.digest import Digest
from keel.domain.run import Run, new_run_id
from keel.project import Project
from keel.web import create_api
from keel.web.server import run_in_thread

SPEC = "version: 1\nname: documents-test\n"
CONTRACT: dict[str, Any] = {
    "kind": "keel.inference-contract",
    "version": 1,
    "inputs": [{"name": "distance", "type": "float", "nullable": False}],
    "outputs": [{"name": "prediction", "type": "integer"}],
}


def _register(project: Project, *, profiled: bool) -> int:
    """A version without training; without a reference profile it is not usable."""
    metadata = project.metadata
    run = Run(
        id=new_run_id(),
        status="running",
        started_at=datetime.now(UTC),
        user="root",
        host="b",
        pid=1,
    )
    metadata.runs.start(run)
    package = Digest.of_hex(hashlib.sha256(run.id.encode()).hexdigest())
    metadata.artifacts.record(package, size=1, media_type="application/zip", actor="root")
    registered = metadata.models.register(
        "flights",
        run_id=run.id,
        package=package,
        flavor="sklearn",
        inference_contract=CONTRACT,
        metrics={"auc": 0.8},
        actor="root",
    )
    metadata.runs.finish(run.id, "completed")
    if profiled:
        metadata.monitoring.put_reference(
            "flights", registered.version, package, row_count=1, source="a test stand-in"
        )
    return registered.version


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
