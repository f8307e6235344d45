"""The end of a canary is a release like any other: the canary check's promotion opens the
same request `keel promote` would, put to the same owner, heard once by subscribers, and
no module outside the release service moves an alias or decides a request. On SQLite and
PostgreSQL, with a small model trained twice."""

from __future__ import annotations

import ast
import importlib.resources
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from keel.cli.errors import EXIT_PERMISSION
from keel.domain.audit import AuditEvent
from keel.domain.prediction import LoggedPrediction
from keel.events import subscribe
from keel.predlog.ids import new_prediction_id
from keel.project import Project
from tests.fixtures.cli import Keel
from tests.fixtures.copies import ProjectCopies, run_keel
from tests.pipeline.test_user_code import FEATURES, SPEC, TRAIN, _raw

MODEL = "toy"
RELEASE_OWNER = "release-team"
TRAINING_OWNER = "ml-team"
#: The release state only the release service may write: alias moves and removals, gate
#: evaluations, requests and their decisions (`keel.metadata.base.Releases`).
WRITES = frozenset(
    {
        "close_request",
        "decide",
        "move_alias",
        "open_request",
        "promote_canary",
        "record_evaluation",
        "remove_alias",
        "roll_back_canary",
        "rollback",
    }
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def toy(
    request: pytest.FixtureRequest,
    keel: Keel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    project_copies: ProjectCopies,
) -> Path:
    """The toy project with v1 and v2 trained, owners named and an hour's canary policy of
    five predictions, on either store (a copy: trained once per run and store)."""
    db_url = None
    if request.param == "postgresql":
        db_url = request.getfixturevalue("fresh_postgres_url")
        monkeypatch.setenv("KEEL_DB_URL", db_url)
    return project_copies.copy(_train_toy, tmp_path, db_url)


def _train_toy(folder: Path, env: dict[str, str]) -> None:
    assert run_keel(folder, env, "init").code == 0
    spec = yaml.safe_load(SPEC)
    spec["owners"] = {"release": RELEASE_OWNER, "training": TRAINING_OWNER}
    spec["retraining"] = {"canary": {"duration": "1h", "min_predictions": 5}}
    (folder / "features.py").write_text(FEATURES)
    (folder / "train.py").write_text(TRAIN)
    pq.write_table(_raw(), folder / "raw.parquet")
    for version, strength in ((1, 1.0), (2, 0.5)):
        spec["training"]["params"] = {"C": strength}
        (folder / "keel.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        trained = run_keel(folder, env, "train", "--json")
        assert trained.code == 0, trained.err
        assert trained.json()["model"]["version"] == version


def _open(folder: Path) -> Project:
    """The project on the store the CLI used (KEEL_DB_URL when the test set it)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("KEEL_")}
    return Project.open(folder, env={**env, "KEEL_USER": "ana"})


def _passing_canary(folder: Path) -> datetime:
    """v1 on production, v2 on canary, and enough alike traffic logged for the analysis to
    promote v2 once the hour is over; returns that moment."""
    with _open(folder) as project:
        releases = project.metadata.releases
        for alias, version in (("production", 1), ("canary", 2)):
            releases.move_alias(
                MODEL, alias, version, expected_holder=None, actor="ana", reason="test setup"
            )
        since = max(a.set_at for a in project.metadata.models.aliases(MODEL))
        logged = [
            LoggedPrediction(
                new_prediction_id(),
                since + timedelta(seconds=30 + i),
                MODEL,
                2 if i % 10 == 0 else 1,
                "canary" if i % 10 == 0 else "production",
                {},
                {"prediction": i % 2, "probability": 0.3 + (i % 7) / 10},
                4.0 + i % 3,
            )
            for i in range(60)
        ]
        project.metadata.predictions.add(logged)
    return since + timedelta(hours=1, minutes=1)


def test_a_canary_promotion_asks_the_release_owner_as_keel_promote_does(
    keel: Keel, toy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = _passing_canary(toy).isoformat()
    heard: list[AuditEvent] = []
    unsubscribe = subscribe(heard.append)
    try:
        checked = keel("canary", "check", "--now", later, "--json")
    finally:
        unsubscribe()
    assert checked.code == 0, checked.out + checked.err
    outcome = checked.json()
    assert (outcome["verdict"], outcome["action"]) == ("promote", "requested"), outcome
    request = outcome["request"]
    assert (request["requested_by"], request["alias"], request["version"]) == (
        "keel-canary",
        "production",
        2,
    )
    # Put to the release owner, as every request keel opens.
    assert request["owner"] == outcome["owner"] == RELEASE_OWNER
    assert outcome["notify"] == [RELEASE_OWNER]
    # Subscribers hear each event of the check once.
    assert [e.kind for e in heard] == ["gates.evaluated", "release.requested"]
    assert heard[0].evidence["owner"] == RELEASE_OWNER
    assert heard[0].evidence["canary"]["verdict"] == "promote"
    assert heard[1].evidence["owner"] == RELEASE_OWNER

    # The same request, whichever way it is asked for.
    again = keel("promote", f"{MODEL}@2", "--to", "production", "--json")
    assert again.code == 8, again.out + again.err
    pending = again.json()
    assert pending["outcome"] == "pending"
    assert (pending["request"]["id"], pending["owner"]) == (request["id"], RELEASE_OWNER)
    waiting = keel("canary", "check", "--now", later, "--json").json()
    assert waiting["action"] == "pending"
    assert (waiting["request"]["id"], waiting["owner"]) == (request["id"], RELEASE_OWNER)

    # Separation of duties, as for any request: who asked cannot approve.
    monkeypatch.setenv("KEEL_USER", "keel-canary")
    own = keel("approve", request["id"], "--json")
    assert own.code == EXIT_PERMISSION, own.out + own.err
    assert "separation of duties" in own.json()["error"]["message"]
    monkeypatch.setenv("KEEL_USER", "ben")
    assert keel("approve", request["id"]).code == 0
    with _open(toy) as project:
        assert project.metadata.releases.holder(MODEL, "production") == 2


def test_gates_that_refuse_production_name_their_owners_on_the_canary_check(
    keel: Keel, toy: Path
) -> None:
    spec = yaml.safe_load((toy / "keel.yaml").read_text())
    spec["release"] = {
        "approvals": {"required": 0},
        "gates": [
            {
                "type": "metric_threshold",
                "metric": "roc_auc",
                "min": 0.999,
                "aliases": ["production"],
            }
        ],
    }
    (toy / "keel.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    later = _passing_canary(toy).isoformat()
    checked = keel("canary", "check", "--now", later, "--json")
    assert checked.code == 0, checked.out + checked.err
    outcome = checked.json()
    assert outcome["action"] == "refused", outcome
    assert [e["kind"] for e in outcome["events"]] == ["canary.rolled_back", "alias.removed"]
    assert [(g["passed"], g["owner"]) for g in outcome["gates"]] == [(False, TRAINING_OWNER)]
    assert outcome["owner"] == RELEASE_OWNER
    assert outcome["notify"] == [RELEASE_OWNER, TRAINING_OWNER]
    with _open(toy) as project:
        releases = project.metadata.releases
        assert (releases.holder(MODEL, "production"), releases.holder(MODEL, "canary")) == (1, None)


def _writes_outside_the_release_service() -> Iterator[str]:
    """Calls like `<...>.releases.move_alias(...)` in keel's source outside the release
    service and the stores that implement them."""
    source = Path(str(importlib.resources.files("keel")))
    allowed = {source / "release", source / "metadata"}
    for path in sorted(source.rglob("*.py")):
        if any(folder in path.parents for folder in allowed):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in WRITES
                and _names_releases(node.func.value)
            ):
                yield f"{path.relative_to(source.parent)}:{node.lineno}: {node.func.attr}"


def _names_releases(node: ast.expr) -> bool:
    """`releases` or `<anything>.releases`: the store's release interface."""
    if isinstance(node, ast.Name):
        return node.id == "releases"
    return isinstance(node, ast.Attribute) and node.attr == "releases"


def test_only_the_release_service_moves_aliases_and_decides_requests() -> None:
    assert list(_writes_outside_the_release_service()) == []
