"""`keel demo`: the whole lifecycle runs, and leaves every step of it in the metadata store
and the audit log, which verifies."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.cli.main import main
from keel.demo import APPROVER, MODEL, OWNER, DemoResult
from keel.project import Project
from keel.serving.explain import explain_prediction
from tests.fixtures.demo import DemoRun, copy_demo


@pytest.fixture(scope="module")
def demo(
    demo_template: DemoRun, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DemoResult, str]]:
    run = copy_demo(demo_template, tmp_path_factory.mktemp("demo") / "flights")
    yield run.result, run.narration


def _events(result: DemoResult) -> list[object]:
    with Project.open(result.folder, env={"KEEL_USER": OWNER}) as project:
        return list(project.metadata.audit.events(after=0))


def test_the_first_release_needs_a_second_person(demo: tuple[DemoResult, str]) -> None:
    result, narration = demo
    assert "ana approving her own request is refused" in narration
    events = _events(result)
    approvals = [e for e in events if e.kind == "release.approved"]  # type: ignore[attr-defined]
    assert approvals and all(e.actor == APPROVER for e in approvals)  # type: ignore[attr-defined]
    first = [e for e in events if e.kind == "alias.moved" and e.alias == "production"]  # type: ignore[attr-defined]
    assert first[0].version == 1  # type: ignore[attr-defined]


def test_monitoring_raised_alerts_with_owners_and_wrote_a_report(
    demo: tuple[DemoResult, str],
) -> None:
    result, _ = demo
    with Project.open(result.folder, env={"KEEL_USER": OWNER}) as project:
        alerts = project.metadata.monitoring.alerts(model=MODEL, state=None, limit=1000)
    rules = Counter(a.rule for a in alerts)
    assert rules["feature-drift"] >= 3 and all(a.owner == OWNER for a in alerts)
    [performance] = [a for a in alerts if a.rule == "performance"]
    assert performance.severity == "critical" and performance.value < performance.threshold
    assert result.report is not None and result.report.exists()
    page = result.report.read_text(encoding="utf-8")
    assert "<svg" in page and 'src="http' not in page and 'href="http' not in page


def test_retraining_put_the_challenger_on_canary_after_approval_and_promoted_it_on_its_own(
    demo: tuple[DemoResult, str],
) -> None:
    result, _ = demo
    events = _events(result)
    [decided] = [e for e in events if e.kind == "retraining.decided"]  # type: ignore[attr-defined]
    evidence = decided.evidence  # type: ignore[attr-defined]
    assert evidence["decision"] == "release to canary"
    assert [t["name"] for t in evidence["triggers"] if t["fired"]]
    comparison = evidence["comparison"]
    assert comparison["challenger"]["version"] == 2
    assert comparison["challenger"]["value"] > comparison["champion"]["value"]
    moves = [(e.alias, e.version) for e in events if e.kind == "alias.moved"]  # type: ignore[attr-defined]
    assert ("canary", 2) in moves and ("production", 2) in moves
    assert moves.index(("canary", 2)) < moves.index(("production", 2))
    # The approval was given for the rollout (onto canary); the analysis promoted it.
    approved = [e for e in events if e.kind == "release.approved"]  # type: ignore[attr-defined]
    assert [(e.version, e.alias) for e in approved] == [  # type: ignore[attr-defined]
        (1, "production"),
        (2, "canary"),
        (3, "canary"),
    ]
    [promoted] = [e for e in events if e.kind == "canary.promoted"]  # type: ignore[attr-defined]
    assert promoted.version == 2 and promoted.actor == "keel-canary"  # type: ignore[attr-defined]
    assert "approved for this rollout" in promoted.reason  # type: ignore[attr-defined]
    with Project.open(result.folder, env={"KEEL_USER": OWNER}) as project:
        assert project.metadata.releases.holder(MODEL, "production") == 2


def test_the_weak_model_on_canary_was_rolled_back_on_its_own(
    demo: tuple[DemoResult, str],
) -> None:
    result, _ = demo
    events = _events(result)
    [rolled] = [e for e in events if e.kind == "canary.rolled_back"]  # type: ignore[attr-defined]
    assert rolled.version == 3 and rolled.actor == "keel-canary"  # type: ignore[attr-defined]
    breached = [c["name"] for c in rolled.evidence["criteria"] if c["breached"]]  # type: ignore[attr-defined]
    assert breached == ["performance"]
    with Project.open(result.folder, env={"KEEL_USER": OWNER}) as project:
        assert project.metadata.releases.holder(MODEL, "canary") is None


def test_a_prediction_is_explained_and_the_audit_log_verifies(
    demo: tuple[DemoResult, str], capsys: pytest.CaptureFixture[str]
) -> None:
    result, narration = demo
    assert result.prediction is not None
    with Project.open(result.folder, env={"KEEL_USER": OWNER}) as project:
        chain = explain_prediction(project, result.prediction)
    assert chain["model"]["ref"] == f"{MODEL}@1"
    assert chain["release"]["releases"][0]["approvals"][0]["actor"] == APPROVER
    assert "chain verified: True" in narration
    assert main(["-C", str(result.folder), "audit-log", "verify"]) == 0
    capsys.readouterr()


def test_the_demo_refuses_a_folder_that_is_not_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "something").write_text("keep me")
    assert main(["demo", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["something"]


def test_explain_knows_the_canary_ended(demo: tuple[DemoResult, str]) -> None:
    # v2 served production after its canary was promoted and removed: it no longer held
    # `canary` when it answered November's requests.
    from datetime import UTC, datetime

    from keel.predlog.read import read_window

    result, _ = demo
    with Project.open(result.folder, env={"KEEL_USER": OWNER}) as project:
        window = read_window(
            project,
            MODEL,
            datetime(2000, 1, 1, tzinfo=UTC),
            datetime(2100, 1, 1, tzinfo=UTC),
            columns=["id", "version", "slot"],
        )
        rows = [r for r in window.to_pylist() if r["version"] == 2 and r["slot"] == "production"]
        assert rows
        chain = explain_prediction(project, rows[-1]["id"])
    assert chain["release"]["holder_at_prediction"] == 2
    assert "canary" not in chain["release"]["aliases_held"]
    assert "production" in chain["release"]["aliases_held"]


def test_the_scorecard_ends_the_story_with_what_to_fix(demo: tuple[DemoResult, str]) -> None:
    result, narration = demo
    card = result.scorecard
    assert card is not None
    status = {item.key: item.status for item in card.items}
    # The demo commits its code: every production model is rebuildable, and the release of
    # today's production version went through gates and an approval.
    assert status["reproducibility.code"] == "pass"
    assert status["release.used"] == "pass"
    assert card.level >= 2
    assert f"score {card.score}/{card.max_score}" in narration
    for item in card.items:
        if item.status != "pass" and item.fix:
            assert item.fix in narration
    with Project.open(result.folder, env={"KEEL_USER": OWNER}) as project:
        chain = explain_prediction(project, result.prediction or "")
    assert chain["run"]["lineage"]["git_commit"]  # the prediction names its commit
