"""schemathesis against /api/v1/openapi.json, on a real server on loopback, with an admin's
token, on SQLite and PostgreSQL: every route, valid and invalid requests, and not one 5xx,
undocumented status or answer outside its schema. Bounded for CI."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import orjson
import pytest
from openapi_spec_validator import validate

from keel.project import Project
from keel.web import create_api
from keel.web.server import run_in_thread
from tests.fuzzing import fuzz
from tests.web.test_api_auth import SPEC, _register

#: Requests per operation and mode (valid, invalid).
EXAMPLES = 15


@pytest.mark.slow
@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_the_api_answers_as_its_openapi_document_says(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    env = {"KEEL_USER": "root"}
    if database == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    Project.init(tmp_path, env=env).close()
    (tmp_path / "keel.yaml").write_text(SPEC)
    with Project.open(tmp_path, env=env) as project:
        project.metadata.identities.add_user("ada", ["admin"], actor="root")
        token = project.metadata.identities.create_token("ada", actor="root")
        _register(project)
        _register(project)
        with run_in_thread(create_api(project)) as url:
            with urllib.request.urlopen(url + "/api/v1/openapi.json", timeout=30) as answer:  # noqa: S310 - loopback
                document = orjson.loads(answer.read())
            validate(document)
            failures = fuzz(
                url, document, examples=EXAMPLES, headers={"Authorization": f"Bearer {token}"}
            )
    assert not failures, "\n\n".join(failures)


def test_every_route_of_the_api_is_in_its_document(tmp_path: Path) -> None:
    from starlette.routing import Route

    from keel.web.api import api_mount

    Project.init(tmp_path, env={"KEEL_USER": "root"}).close()
    (tmp_path / "keel.yaml").write_text(SPEC)
    with Project.open(tmp_path, env={"KEEL_USER": "root"}) as project:
        mount = api_mount(project)
        with (
            run_in_thread(create_api(project)) as url,
            urllib.request.urlopen(url + "/api/v1/openapi.json", timeout=30) as answer,  # noqa: S310 - loopback
        ):
            document = orjson.loads(answer.read())
    served = {
        (f"/api/v1{route.path}", method.lower())
        for route in mount.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served == documented
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["security"] == [{"bearerAuth": []}]
