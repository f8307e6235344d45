"""Labels are writes: who may send them, in which form, and what is kept of them, over HTTP
(a real server on loopback) and on the command line, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keel.domain.prediction import LoggedPrediction
from keel.predlog.ids import new_prediction_id
from keel.project import Project
from tests.fixtures.cli import Keel
from tests.serving.support import Client, serve

MODEL = "labels"
T0 = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def project_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A project (named like its model) whose prediction log holds ten predictions, on the
    database of the parameter; KEEL_DB_URL names it for the CLI too."""
    env = {"KEEL_USER": "ana"}
    if request.param == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
        monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setenv("KEEL_DB_URL", env["KEEL_DB_URL"])
    folder = tmp_path / "project"
    ids = [new_prediction_id(T0.timestamp() + n) for n in range(10)]
    with Project.init(folder, name=MODEL, env=env) as project:
        project.metadata.predictions.add(
            [
                LoggedPrediction(i, T0 + timedelta(seconds=n), MODEL, 1, "production", {}, {}, 1.0)
                for n, i in enumerate(ids)
            ]
        )
    (folder / ".env-url").write_text(env.get("KEEL_DB_URL", ""))
    (folder / "ids.json").write_text(json.dumps(ids))
    return folder


def _ids(project_dir: Path) -> list[str]:
    ids: list[str] = json.loads((project_dir / "ids.json").read_text())
    return ids


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    url = (project_dir / ".env-url").read_text()
    env = {"KEEL_USER": "ana", **({"KEEL_DB_URL": url} if url else {})}
    with Project.open(project_dir, env=env) as opened:
        yield opened


# --- the command line -------------------------------------------------------------------------


def test_the_cli_records_its_actor_and_keeps_the_replaced_label(
    keel: Keel, project_dir: Path, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _ids(project_dir)
    first = project_dir / "first.jsonl"
    first.write_text("".join(json.dumps({"prediction_id": i, "label": 0}) + "\n" for i in ids))
    monkeypatch.setenv("KEEL_USER", "carla")
    recorded = keel("-C", project_dir, "feedback", first, "--json")
    assert recorded.code == 0, recorded.out + recorded.err
    assert recorded.json()["feedback"]["received_by"] == "carla"

    second = project_dir / "second.csv"
    second.write_text("prediction_id,label\n" + f"{ids[0]},1\n{ids[1]},0\n")
    monkeypatch.setenv("KEEL_USER", "dave")
    again = keel("-C", project_dir, "feedback", second, "--json")
    assert again.code == 0, again.out + again.err
    answer = again.json()["feedback"]
    assert (answer["replaced"], answer["changed"], answer["received_by"]) == (2, 1, "dave")

    events = project.metadata.audit.events(kinds=["labels.recorded"])
    assert [(e.actor, e.model, e.evidence["labels"], e.evidence["changed"]) for e in events] == [
        ("carla", MODEL, 10, 0),
        ("dave", MODEL, 2, 1),
    ]
    assert events[1].evidence["via"] == str(second)
    assert answer["audit_events"] == [events[1].seq]
    shown = keel("-C", project_dir, "audit-log", "--kind", "labels.recorded")
    assert shown.code == 0, shown.err
    assert "dave" in shown.out and "2 label(s): 0 new, 2 replaced (1 changed)" in shown.out

    history = keel("-C", project_dir, "feedback", "--history", ids[0].upper(), "--json")
    assert history.code == 0, history.out + history.err
    labels = history.json()["labels"]
    assert [(e["label"], e["received_by"], e["superseded_by"], e["current"]) for e in labels] == [
        (0, "carla", "dave", False),
        (1, "dave", None, True),
    ]
    text = keel("-C", project_dir, "feedback", "--history", ids[0])
    assert text.code == 0 and "(current)" in text.out and "carla" in text.out
    none = keel("-C", project_dir, "feedback", "--history", new_prediction_id(), "--json")
    assert none.code == 0 and none.json()["labels"] == []
    bad = keel("-C", project_dir, "feedback", "--history", "nope")
    assert bad.code == 2 and "not a prediction id" in bad.err
    assert project.metadata.audit.verify().ok


# --- HTTP: the serving port and the registry API ----------------------------------------------


def _tokens(project: Project) -> dict[str, str]:
    identities = project.metadata.identities
    for name, role in (("lena", "labeler"), ("tom", "trainer"), ("vic", "viewer")):
        identities.add_user(name, [role], actor="ana")  # type: ignore[list-item]
    return {name: identities.create_token(name, actor="ana") for name in ("lena", "tom", "vic")}


def _bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


@pytest.mark.parametrize("path", ["/v1/feedback", "/api/v1/feedback"])
def test_labels_over_http_need_a_token_that_may_label_and_json(
    project_dir: Path, project: Project, path: str
) -> None:
    ids = _ids(project_dir)
    tokens = _tokens(project)
    body = json.dumps({"feedback": [{"prediction_id": i, "label": 1} for i in ids]}).encode()
    evil = {"Origin": "http://evil.example"}
    with serve(project) as (url, _), Client(url) as client:
        # No token, a malformed header, an unknown token: 401 with the Bearer challenge.
        for headers in (
            {},
            {"Authorization": "Basic YW5hOnB3"},
            _bearer("keel_" + "0" * 16 + "_x"),
        ):
            refused = client.request("POST", path, body, headers)
            assert refused.status == 401, refused.text
            assert refused.headers["www-authenticate"].startswith("Bearer"), refused.headers
        # A reader may not label; the answer names the roles that may.
        denied = client.request("POST", path, body, _bearer(tokens["vic"]))
        assert denied.status == 403, denied.text
        assert all(role in denied.text for role in ("labeler", "trainer", "admin"))
        # What another site's page can send without a preflight is refused, token or not.
        for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            for headers in ({"Content-Type": kind, **evil}, _bearer(tokens["lena"], **evil)):
                wrong = client.request("POST", path, body, {"Content-Type": kind, **headers})
                assert wrong.status == 415, wrong.text
                assert "application/json" in wrong.text
                assert "access-control-allow-origin" not in {h.lower() for h in wrong.headers}
        preflight = client.request(
            "OPTIONS", path, None, {**evil, "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in {h.lower() for h in preflight.headers}
        assert project.metadata.feedback.count(MODEL) == 0  # nothing recorded by any of them
        assert project.metadata.audit.events(kinds=["labels.recorded"]) == []

        # A labelling service's token records them, as its user, with an audit event.
        sent = client.request("POST", path, body, _bearer(tokens["lena"], **evil))
        assert sent.status == 200, sent.text
        answer = sent.json()
        assert (answer["new"], answer["received_by"]) == (10, "lena")
        assert "access-control-allow-origin" not in {h.lower() for h in sent.headers}

        # A trainer relabels one prediction: the old label stays in its history.
        again = {"feedback": [{"prediction_id": ids[0], "label": 0}]}
        relabel = client.request("POST", path, json.dumps(again).encode(), _bearer(tokens["tom"]))
        assert relabel.status == 200, relabel.text
        assert (relabel.json()["replaced"], relabel.json()["changed"]) == (1, 1)

    first, second = project.metadata.audit.events(kinds=["labels.recorded"])
    assert (first.actor, first.model, first.evidence["labels"], first.evidence["new"]) == (
        "lena",
        MODEL,
        10,
        10,
    )
    assert (second.actor, second.evidence["replaced"], second.evidence["changed"]) == ("tom", 1, 1)
    assert answer["audit_events"] == [first.seq]
    via = "POST /v1/feedback from 127.0.0.1" if path == "/v1/feedback" else f"POST {path}"
    assert first.evidence["via"] == via
    history = project.metadata.feedback.history(ids[0])
    assert [(h.label, h.received_by, h.superseded_by) for h in history] == [
        (1, "lena", "tom"),
        (0, "tom", None),
    ]
    assert project.metadata.feedback.labels(ids[:2]) == {ids[0]: 0, ids[1]: 1}
    assert project.metadata.audit.verify().ok


def test_a_disabled_labeler_is_refused_at_once(project_dir: Path, project: Project) -> None:
    ids = _ids(project_dir)
    tokens = _tokens(project)
    body = json.dumps({"feedback": [{"prediction_id": ids[0], "label": 1}]}).encode()
    with serve(project) as (url, _), Client(url) as client:
        assert client.request("POST", "/v1/feedback", body, _bearer(tokens["lena"])).status == 200
        project.metadata.identities.disable_user("lena", actor="ana")
        refused = client.request("POST", "/v1/feedback", body, _bearer(tokens["lena"]))
        assert refused.status == 401, refused.text
    assert [e.actor for e in project.metadata.audit.events(kinds=["labels.recorded"])] == ["lena"]
