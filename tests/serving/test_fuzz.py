"""schemathesis against `keel serve`'s own /openapi.json, on a real server on loopback: every
route the document lists, valid and invalid requests, and not one 5xx, undocumented status or
answer outside its schema. Bounded so that the whole fuzz stays well within CI's budget."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import orjson
import pytest
from openapi_spec_validator import validate

from tests.fixtures.trained import TrainedOnPostgres, write_spec
from tests.fuzzing import fuzz
from tests.serving.support import MODEL, open_project, serve, served_copy, set_alias

#: Requests per operation and mode (valid, invalid): the whole fuzz (both documents, both
#: databases) stays within about 90 s of CI on 2 cores.
EXAMPLES = 20
EXAMPLES_POSTGRES = 12


@pytest.mark.slow
def test_keel_serve_answers_as_its_openapi_document_says(
    trained_template: Path, tmp_path: Path
) -> None:
    folder = served_copy(trained_template, tmp_path / "flights", max_rows=20)
    with open_project(folder) as project:
        set_alias(project, "production", 1)
        set_alias(project, "canary", 2)
        project.metadata.identities.add_user("lee", ["labeler"], actor="root")
        token = project.metadata.identities.create_token("lee", actor="root")
        with serve(project) as (url, _):
            with urllib.request.urlopen(url + "/openapi.json", timeout=30) as answer:  # noqa: S310 - loopback
                document = orjson.loads(answer.read())
            validate(document)
            failures = fuzz(
                url, document, examples=EXAMPLES, headers={"Authorization": f"Bearer {token}"}
            )
    assert not failures, "\n\n".join(failures)


#: The routes that write to the metadata store, fuzzed again on PostgreSQL (which refuses
#: more than SQLite does: NUL in text, integers beyond 64 bits).
WRITING = frozenset(
    {
        "POST /predict",
        f"POST /models/{MODEL}/predict",
        "POST /v2/models/{name}/infer",
        "POST /v1/feedback",
    }
)


@pytest.mark.slow
@pytest.mark.postgres
def test_keel_serve_on_postgresql_answers_as_its_openapi_document_says(
    trained_postgres_template: TrainedOnPostgres, tmp_path: Path, trained_postgres_url: str
) -> None:
    from keel.project import Project

    folder = tmp_path / "flights"
    env = {"KEEL_USER": "ana", "KEEL_DB_URL": trained_postgres_url}
    shutil.copytree(trained_postgres_template.folder, folder)
    write_spec(folder, serving={"max_rows": 20})
    with Project.open(folder, env=env) as project:
        set_alias(project, "production", 1)
        project.metadata.identities.add_user("lee", ["labeler"], actor="root")
        token = project.metadata.identities.create_token("lee", actor="root")
        with serve(project) as (url, _):
            with urllib.request.urlopen(url + "/openapi.json", timeout=30) as answer:  # noqa: S310 - loopback
                document = orjson.loads(answer.read())
            failures = fuzz(
                url,
                document,
                examples=EXAMPLES_POSTGRES,
                headers={"Authorization": f"Bearer {token}"},
                only=WRITING,
            )
    assert not failures, "\n\n".join(failures)
