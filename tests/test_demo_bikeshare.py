"""`keel demo --example bikeshare`: the regression story runs on SQLite and on PostgreSQL, and
leaves every step of it in the metadata store and the audit log, which verifies: a daily date as
the time column, rmse (lower is better) deciding gates, the trigger, the challenger and the
canary."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url
from threadpoolctl import threadpool_limits

from keel.cli.main import main
from keel.demo import APPROVER, OWNER, DemoResult, run_demo
from keel.demo.stories import BIKESHARE
from keel.project import Project
from keel.serving.explain import explain_prediction
from tests.fixtures.postgres import _admin

pytestmark = pytest.mark.slow  # keel demo --example bikeshare on both databases

MODEL = BIKESHARE.model
#: The policy's limit on rmse (rentals an hour): the first release passes under it, 2012's
#: traffic breaches it.
LIMIT = BIKESHARE.policy["retraining"]["triggers"]["performance"]["above"]


@dataclass
class Demo:
    result: DemoResult
    narration: str
    env: dict[str, str]

    def project(self) -> Project:
        return Project.open(self.result.folder, env={**self.env, "KEEL_USER": OWNER})

    def events(self) -> list[object]:
        with self.project() as project:
            return list(project.metadata.audit.events(after=0))


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    env: dict[str, str] = {}
    database = None
    if request.param == "postgresql":
        server = make_url(request.getfixturevalue("postgres_url"))
        database = f"keel_t_{uuid.uuid4().hex[:16]}"
        _admin(server, "CREATE DATABASE {}", database)
        env["KEEL_DB_URL"] = server.set(database=database).render_as_string(hide_password=False)
    lines: list[str] = []
    try:
        # One training thread: OpenMP's threads fight over a small, shared machine.
        with threadpool_limits(1):
            folder = tmp_path_factory.mktemp("demo") / "bikeshare"
            result = run_demo(folder, say=lines.append, example="bikeshare", env=env)
        yield Demo(result, "\n".join(lines), env)
    finally:
        if database is not None:
            _admin(server, "DROP DATABASE IF EXISTS {} WITH (FORCE)", database)


def test_the_project_is_a_regression_on_a_daily_date_column(demo: Demo) -> None:
    folder = demo.result.folder
    spec = yaml.safe_load((folder / "keel.yaml").read_text(encoding="utf-8"))
    assert spec["data"]["timestamp"] == "dteday" and spec["data"]["target"] == "cnt"
    assert spec["metrics"] == ["rmse", "mae", "r2"]
    contract = yaml.safe_load((folder / "contracts" / "raw.yaml").read_text(encoding="utf-8"))
    assert contract["timestamp"]["column"] == "dteday"
    assert contract["columns"]["dteday"]["type"] == "date"
    assert contract["columns"]["weekday"]["nullable"] is True
    with demo.project() as project:
        version = project.metadata.models.get(MODEL, 1)
    # The model serves from raw rows, the day as a date; the target is no input.
    inputs = {f["name"]: f["type"] for f in version.inference_contract["inputs"]}
    assert inputs["dteday"] == "date" and inputs["hr"] == "string" and "cnt" not in inputs


def test_the_first_release_passed_the_rmse_limit_and_needed_a_second_person(demo: Demo) -> None:
    assert "ana approving her own request is refused" in demo.narration
    assert f"pass  rmse <= {LIMIT}" in demo.narration
    events = demo.events()
    approvals = [e for e in events if e.kind == "release.approved"]  # type: ignore[attr-defined]
    assert approvals and all(e.actor == APPROVER for e in approvals)  # type: ignore[attr-defined]
    first = [e for e in events if e.kind == "alias.moved" and e.alias == "production"]  # type: ignore[attr-defined]
    assert first[0].version == 1  # type: ignore[attr-defined]


def test_2012_drifted_and_rmse_rose_above_the_limit(demo: Demo) -> None:
    with demo.project() as project:
        alerts = project.metadata.monitoring.alerts(model=MODEL, state=None, limit=1000)
    rules = Counter(a.rule for a in alerts)
    assert rules["feature-drift"] >= 1 and all(a.owner == OWNER for a in alerts)
    performance = [a for a in alerts if a.rule == "performance" and a.subject == "rmse"]
    assert performance and all(a.value > a.threshold for a in performance)
    assert demo.result.report is not None and demo.result.report.exists()
    for month in BIKESHARE.replayed:
        assert f"{month}: {BIKESHARE.per_month} predictions, 100% labelled, rmse " in demo.narration


def test_retraining_chose_the_challenger_with_the_lower_rmse(demo: Demo) -> None:
    events = demo.events()
    [decided] = [e for e in events if e.kind == "retraining.decided"]  # type: ignore[attr-defined]
    evidence = decided.evidence  # type: ignore[attr-defined]
    assert evidence["decision"] == "release to canary"
    fired = {t["name"] for t in evidence["triggers"] if t["fired"]}
    assert "performance" in fired
    comparison = evidence["comparison"]
    assert comparison["metric"] == "rmse"
    assert comparison["challenger"]["version"] == 2
    # Lower is better: the challenger wins with the smaller error.
    assert comparison["challenger"]["value"] < comparison["champion"]["value"]
    moves = [(e.alias, e.version) for e in events if e.kind == "alias.moved"]  # type: ignore[attr-defined]
    assert ("canary", 2) in moves and ("production", 2) in moves
    assert moves.index(("canary", 2)) < moves.index(("production", 2))
    approved = [e for e in events if e.kind == "release.approved"]  # type: ignore[attr-defined]
    assert [(e.version, e.alias) for e in approved] == [  # type: ignore[attr-defined]
        (1, "production"),
        (2, "canary"),
        (3, "canary"),
    ]
    [promoted] = [e for e in events if e.kind == "canary.promoted"]  # type: ignore[attr-defined]
    assert promoted.version == 2 and promoted.actor == "keel-canary"  # type: ignore[attr-defined]
    with demo.project() as project:
        assert project.metadata.releases.holder(MODEL, "production") == 2
        # The retrained model learned from a new dataset version: the source caught up.
        runs = [project.metadata.models.get(MODEL, v).run_id for v in (1, 2)]
        datasets = [project.metadata.runs.get(run).dataset for run in runs]
        assert datasets[0] is not None and datasets[0] != datasets[1]


def test_the_weak_model_on_canary_was_rolled_back_on_its_own(demo: Demo) -> None:
    events = demo.events()
    [rolled] = [e for e in events if e.kind == "canary.rolled_back"]  # type: ignore[attr-defined]
    assert rolled.version == 3 and rolled.actor == "keel-canary"  # type: ignore[attr-defined]
    breached = [c["name"] for c in rolled.evidence["criteria"] if c["breached"]]  # type: ignore[attr-defined]
    assert breached == ["performance"]
    with demo.project() as project:
        assert project.metadata.releases.holder(MODEL, "canary") is None
        assert project.metadata.releases.holder(MODEL, "production") == 2


def test_a_prediction_is_explained_and_the_audit_log_verifies(
    demo: Demo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert demo.result.prediction is not None
    with demo.project() as project:
        chain = explain_prediction(project, demo.result.prediction)
    assert chain["model"]["ref"] == f"{MODEL}@1"
    assert chain["release"]["releases"][0]["approvals"][0]["actor"] == APPROVER
    assert chain["run"]["lineage"]["git_commit"]
    # The request carried the day as text, a plain date.
    assert chain["prediction"]["inputs"]["dteday"] == "2012-01-01"
    assert "chain verified: True" in demo.narration
    for key, value in demo.env.items():
        monkeypatch.setenv(key, value)
    assert main(["-C", str(demo.result.folder), "audit-log", "verify"]) == 0
    capsys.readouterr()


def test_the_scorecard_ends_the_story(demo: Demo) -> None:
    card = demo.result.scorecard
    assert card is not None
    status = {item.key: item.status for item in card.items}
    assert status["reproducibility.code"] == "pass"
    assert status["release.used"] == "pass"
    assert f"score {card.score}/{card.max_score}" in demo.narration


def test_keel_demo_takes_the_example_and_refuses_an_unknown_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--example", "nope", str(tmp_path / "new")]) == 2
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
