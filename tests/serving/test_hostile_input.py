"""Input that once made a 5xx, on a real server on loopback: values the model's own code
raises on (a 422 naming the model and the exception), path parameters that are not what
they look like, and bodies nested thousands of levels deep, on the serving routes, on
/api/v1 (SQLite and PostgreSQL) and on the UI's pages."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keel.predlog.writer import open_prediction_log
from keel.project import Project
from keel.server import create_app
from keel.web.server import run_in_thread
from tests.serving.support import (
    MODEL,
    Client,
    oip_request,
    open_project,
    records,
    served_copy,
    set_alias,
)

#: 30,000 levels: Python's json recursed into a RecursionError (a 500) on /api/v1.
DEEP = b"[" * 30_000 + b"]" * 30_000
#: As deep as fits in /api/v1's 64 KiB.
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000


@dataclass(frozen=True)
class Server:
    url: str
    row: dict[str, Any]
    token: str


@pytest.fixture(scope="module")
def server(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Values outside the data contract reach the model only when the server warns.
    folder = served_copy(
        trained_template, tmp_path_factory.mktemp("hostile") / "flights", input_contract="warn"
    )
    with open_project(folder) as project:
        set_alias(project, "production", 1)
        project.metadata.identities.add_user(
            "dee", ["deployer", "trainer", "approver"], actor="root"
        )
        token = project.metadata.identities.create_token("dee", actor="root")
        app, _ = create_app(project, log=open_prediction_log(project), ui=True)
        with run_in_thread(app) as url:
            yield Server(url, records(trained_template, 1)[0], token)


# --- the model's own code raising on a valid request ---------------------------------------

#: Values the inference contract accepts (integers) that the flights feature code cannot
#: turn into a date: each made a 500 with a 26-line traceback.
FEATURE_FAILURES = {"month=0": {"month": 0}, "month=13": {"month": 13}}
FEATURE_FAILURES["year=2**63-1"] = {"year": 9223372036854775807}


@pytest.mark.parametrize("change", FEATURE_FAILURES.values(), ids=list(FEATURE_FAILURES))
@pytest.mark.parametrize("protocol", ["records", "oip"])
def test_a_value_the_model_raises_on_is_a_422_naming_model_and_exception(
    server: Server, change: dict[str, int], protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    row = {**server.row, **change}
    with Client(server.url) as client, caplog.at_level(logging.WARNING, logger="keel"):
        if protocol == "oip":
            answer = client.post(f"/v2/models/{MODEL}/infer", oip_request([row]))
        else:
            answer = client.post("/predict", {"records": [row]})
        assert answer.status == 422, answer.text
        assert answer.headers["content-type"] == "application/json"
        document = answer.json()
        assert (document["model"], document["version"]) == (MODEL, 1)
        assert document["exception"]["type"]
        assert document["exception"]["message"]
        assert f"{MODEL}@1 could not score this request" in document["error"]
        assert "features:build failed in features.py" in document["error"]
        assert document["problems"][0]["field"] == "model"
        assert "Traceback" not in answer.text and 'File "' not in answer.text
        # The server goes on answering good requests.
        assert client.post("/predict", {"records": [server.row]}).status == 200
    # The traceback is in the log, once.
    logged = [r for r in caplog.records if r.exc_info and r.name.startswith("keel")]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert logged[0].levelno >= logging.WARNING


# --- path parameters ------------------------------------------------------------------------

#: '²' is a digit to str.isdigit, not to int(); the others are near misses of a number.
NOT_VERSIONS = ["%C2%B2", "%D9%A3", "1%0A", "+1", "0", "-1", "1.0", "9223372036854775808"]


@pytest.mark.parametrize("version", NOT_VERSIONS)
@pytest.mark.parametrize("tail", ["", "/ready", "/infer"])
def test_a_version_that_is_not_a_number_is_a_404_naming_the_parameter(
    server: Server, version: str, tail: str
) -> None:
    path = f"/v2/models/{MODEL}/versions/{version}{tail}"
    with Client(server.url) as client:
        if tail == "/infer":
            answer = client.post(path, oip_request([server.row]))
        else:
            answer = client.get(path)
        assert answer.status == 404, answer.text
        assert answer.headers["content-type"] == "application/json"
        document = answer.json()
        assert document["problems"][0]["field"] == "version", document
        assert "ASCII digits" in document["problems"][0]["rule"]
        served = client.get(f"/v2/models/{MODEL}/versions/1{tail}".replace("/infer", "/ready"))
        assert served.status == 200


def test_a_served_version_by_its_largest_number_is_merely_not_served(server: Server) -> None:
    with Client(server.url) as client:
        answer = client.get(f"/v2/models/{MODEL}/versions/9223372036854775807")
    assert answer.status == 404
    assert answer.json()["problems"][0] == {
        "field": "version",
        "rule": "one of v1",
        "detail": "got '9223372036854775807'",
    }


@pytest.mark.parametrize("name", ["%C2%B2", "Flights", "a%20b", "-x", "x" * 64])
def test_a_model_name_outside_the_rule_is_a_404_naming_the_parameter(
    server: Server, name: str
) -> None:
    with Client(server.url) as client:
        for path in (f"/v2/models/{name}", f"/v2/models/{name}/versions/1/ready"):
            answer = client.get(path)
            assert answer.status == 404, answer.text
            problem = answer.json()["problems"][0]
            assert problem["field"] == "name" and "lowercase letters" in problem["rule"]


@pytest.mark.parametrize("version", ["%C2%B2", "%D9%A3", "9223372036854775808"])
def test_the_ui_and_the_api_refuse_a_version_that_is_not_a_number(
    server: Server, version: str
) -> None:
    with Client(server.url) as client:
        page = client.get(f"/ui/models/{MODEL}/versions/{version}")
        assert page.status == 404, page.text
        assert "ASCII digits" in page.text
        api = client.request(
            "GET",
            f"/api/v1/models/{MODEL}/versions/{version}",
            headers={"Authorization": f"Bearer {server.token}"},
        )
        assert api.status == 400, api.text
        assert api.json()["error"]["problems"][0]["field"] == "version"


# --- nesting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["arrays", "objects"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/models/flights-delay/versions/1/promote",
        "/api/v1/feedback",
        "/api/v1/requests/0123456789/approve",
        "/v1/feedback",
        "/predict",
        f"/v2/models/{MODEL}/infer",
    ],
)
def test_a_body_nested_30000_deep_is_a_400_naming_the_rule(
    server: Server, path: str, body: bytes
) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    with Client(server.url) as client:
        answer = client.request("POST", path, body, headers)
        assert answer.status == 400, answer.text[:500]
        document = answer.json()
        problems = (
            document["error"]["problems"] if path.startswith("/api") else document["problems"]
        )
        assert problems[0]["field"] == "body"
        assert "levels deep" in problems[0]["rule"]


# --- /api/v1 on PostgreSQL --------------------------------------------------------------------


@pytest.mark.postgres
def test_the_api_on_postgresql_refuses_bad_versions_and_deep_bodies(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    from keel.web import create_api

    env = {"KEEL_USER": "root", "KEEL_DB_URL": fresh_postgres_url}
    Project.init(tmp_path, env=env).close()
    (tmp_path / "keel.yaml").write_text("version: 1\nname: pg-test\n")
    with Project.open(tmp_path, env=env) as project:
        project.metadata.identities.add_user(
            "dee", ["deployer", "trainer", "approver"], actor="root"
        )
        token = project.metadata.identities.create_token("dee", actor="root")
        headers = {"Authorization": f"Bearer {token}"}
        with run_in_thread(create_api(project)) as url, Client(url) as client:
            for version in ("%C2%B2", "%D9%A3", "9223372036854775808"):
                answer = client.request(
                    "GET", f"/api/v1/models/m/versions/{version}", None, headers
                )
                assert answer.status == 400, answer.text
            # The largest number is a number: not found, not a database error.
            largest = client.request(
                "GET", "/api/v1/models/m/versions/9223372036854775807", None, headers
            )
            assert largest.status == 404, largest.text
            # Text PostgreSQL cannot hold (NUL) in a path or query: a 400 naming the parameter.
            for path, parameter in (
                ("/api/v1/requests?model=a%00b", "model"),
                ("/api/v1/audit-log?model=%00", "model"),
                ("/api/v1/requests/ab%00cd", "id"),
                ("/api/v1/models/a%00b", "name"),
            ):
                answer = client.request("GET", path, None, headers)
                assert answer.status == 400, (path, answer.text)
                assert answer.json()["error"]["problems"][0]["field"] == parameter
            for path in ("/api/v1/models/m/versions/1/promote", "/api/v1/feedback"):
                answer = client.request("POST", path, DEEP, headers)
                assert answer.status == 400, answer.text[:500]
                assert "levels deep" in json.dumps(answer.json())


@pytest.mark.parametrize(
    "path", ["/ui/requests/ab%00cd", f"/ui/models/{MODEL}?before=%00", "/ui/predictions?id=%00"]
)
def test_a_ui_page_refuses_a_nul_in_its_parameters(server: Server, path: str) -> None:
    with Client(server.url) as client:
        page = client.get(path)
    assert page.status == 400, page.text
    assert "must not contain NUL characters" in page.text


class _Raising:
    """A loaded model whose code raises on every request."""

    def score(self, frame: Any) -> Any:
        raise ValueError("the shadow's feature code broke")


def test_a_shadow_that_raises_never_fails_the_request(
    trained_template: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import dataclasses

    folder = served_copy(trained_template, tmp_path / "flights", shadow=["staging"])
    row = records(trained_template, 1)[0]
    with open_project(folder) as project:
        set_alias(project, "production", 1)
        set_alias(project, "staging", 2)
        app, serving = create_app(project, log=open_prediction_log(project))
        with run_in_thread(app) as url, Client(url) as client:
            route = serving.state.routes[MODEL]
            assert route.shadows, "staging's holder is loaded as a shadow"
            # v2's code failing on this request (as new code may): swapped in as the reload
            # watcher swaps routes, in one assignment.
            broken = {
                alias: dataclasses.replace(shadow, loaded=_Raising())  # type: ignore[arg-type]
                for alias, shadow in route.shadows.items()
            }
            serving.state._routes = {MODEL: dataclasses.replace(route, shadows=broken)}
            with caplog.at_level(logging.WARNING, logger="keel.serving"):
                answer = client.post("/predict", {"records": [row]})
                assert answer.status == 200, answer.text
                assert answer.json()["version"] == 1
                serving._shadow_pool.submit(lambda: None).result(timeout=60)  # drained
    assert any("shadow flights-delay@2 failed" in r.getMessage() for r in caplog.records)


def test_a_binary_header_length_that_is_not_ascii_digits_is_a_400(server: Server) -> None:
    body = json.dumps(oip_request([server.row])).encode()
    with Client(server.url) as client:
        # http.client sends header values as Latin-1: b"\xb2" arrives as '²'.
        answer = client.request(
            "POST",
            f"/v2/models/{MODEL}/infer",
            body,
            {"Inference-Header-Content-Length": "\xb2"},
        )
    assert answer.status == 400, answer.text
    assert answer.json()["problems"][0]["field"] == "Inference-Header-Content-Length"
