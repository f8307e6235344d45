"""Labels are writes: who may send them, in which form, and what is kept of them, over HTTP
(a real server on loopback) and on the command line, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keel.domain.prediction import LoggedPrediction
from keel.project import Project
from keel.serving.ids import new_prediction_id
from tests.fixtures.cli import Keel

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
