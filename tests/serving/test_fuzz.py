"""schemathesis against `keel serve`'s own /openapi.json, on a real server on loopback: every
route the document lists, valid and invalid requests, and not one 5xx, undocumented status or
answer outside its schema. Bounded so that the whole fuzz stays well within CI's budget."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import orjson
import pytest
from openapi_spec_validator import validate

from tests.fuzzing import fuzz
from tests.serving.support import open_project, serve, served_copy, set_alias

#: Requests per operation and mode (valid, invalid).
EXAMPLES = 12


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
