"""The scorecard of the flights example as it grows from bare to operated: each step changes
the project for real (keel.yaml, the release service, batch scoring, the monitor, git), and
exactly the items that step is about change status, with the evidence, and the score rises."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from keel.domain.identity import Actor
from keel.maturity import LEVELS, Scorecard, scorecard
from keel.maturity.model import Item, build_scorecard, level_of
from keel.monitoring.service import monitor
from keel.pipeline.train import train
from keel.project import Project
from keel.release.service import approve, promote
from keel.serving.batch import predict_batch
from tests.fixtures.trained import AS_OF, BASE, MODEL, write_spec

ENV = {"KEEL_USER": "ana"}
ANA = Actor("ana", frozenset(), via="test")
BEN = Actor("ben", frozenset(), via="test")
OWNERS = {"data": "dana", "training": "tom", "release": "rita", "monitoring": "mo"}
GATES = [
    {"type": "contract_passed"},
    {"type": "inference_contract", "samples": 20},
    {"type": "metric_threshold", "metric": "roc_auc", "min": 0.6},
    # v4 may trail v2 a little: the point is that it is scored against it.
    {"type": "beats_champion", "metric": "roc_auc", "margin": -0.05},
]
RULES = [
    {"name": "feature-drift", "signal": "drift", "subject": "inputs.*", "owner": "data"},
    {
        "name": "low-auc",
        "signal": "performance",
        "threshold": 0.6,
        "direction": "below",
        "owner": "training",
    },
]
KEY = ["carrier", "flight", "time_hour"]


class Stepper:
    """One project's keel.yaml, rewritten section by section, and its scorecards so far."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        data = {key: value for key, value in BASE["data"].items() if key != "contract"}  # type: ignore[attr-defined]
        self.spec: dict[str, Any] = {
            **BASE,
            "data": data,
            "release": {"approvals": {"required": 0}},
            "monitoring": {"freshness": {"data": False, "predictions": None}},
            "serving": {"log": {"enabled": False}},
        }
        self.write()
        self.cards = [self.card()]

    def write(self) -> None:
        (self.folder / "keel.yaml").write_text(yaml.safe_dump(self.spec, sort_keys=False))

    def open(self) -> Project:
        return Project.open(self.folder, env=ENV)

    def card(self) -> Scorecard:
        with self.open() as project:
            return scorecard(project)

    def step(self) -> dict[str, tuple[str, str]]:
        """Score again: the items whose status changed, as key -> (before, after)."""
        card = self.card()
        before = {i.key: i.status for i in self.cards[-1].items}
        self.cards.append(card)
        assert card.score > self.cards[-2].score, (self.cards[-2].score, card.score)
        return {i.key: (before[i.key], i.status) for i in card.items if before[i.key] != i.status}

    @property
    def now(self) -> Scorecard:
        return self.cards[-1]

    def evidence(self, key: str) -> str:
        return self.now.item(key).evidence


def _git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=ana", "-c", "user.email=ana@example.org", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )


def _promote_approved(project: Project, version: int) -> None:
    result = promote(project, f"{MODEL}@{version}", "production", actor=ANA)
    assert result.outcome == "pending", [g.reason for g in result.gates if not g.passed]
    assert result.request is not None
    decided = approve(project, result.request.id, actor=BEN)
    assert decided.outcome == "approved"


def test_the_scorecard_rises_item_by_item_from_bare_to_operated(
    release_project: Path, tmp_path: Path
) -> None:
    steps = Stepper(release_project)
    bare = steps.now
    assert {i.key: i.status for i in bare.items} == {
        "ownership.stages": "fail",
        "ownership.alerts": "fail",
        "reproducibility.dataset": "n/a",
        "reproducibility.code": "n/a",
        "reproducibility.environment": "n/a",
        "release.gates": "fail",
        "release.approvals": "fail",
        "release.used": "n/a",
        "monitoring.serving": "fail",
        "monitoring.recent": "n/a",
        "monitoring.alerts": "partial",
        "retraining.triggers": "fail",
        "data.contract": "fail",
        "data.freshness": "fail",
        "data.skew": "fail",
    }
    assert (bare.score, bare.max_score, bare.level, bare.level_name) == (1, 30, 0, "ad hoc")
    assert "4 of 4 unowned" in steps.evidence("ownership.stages")
    assert steps.evidence("reproducibility.dataset") == "no model version holds production yet"
    assert "owners.release: <person or team>" in str(bare.item("ownership.stages").fix)

    # 1. Every stage gets an owner: the default alert rules, which name stages, now reach one.
    steps.spec["owners"] = OWNERS
    steps.write()
    assert steps.step() == {
        "ownership.stages": ("fail", "pass"),
        "ownership.alerts": ("fail", "pass"),
    }
    assert steps.evidence("ownership.alerts") == "all 8 alert rules resolve to an owner"
    assert steps.evidence("ownership.stages") == (
        "data: dana, training: tom, release: rita, monitoring: mo"
    )
    assert steps.now.item("ownership.stages").fix is None

    # 2. The data contract (with its freshness rule) is configured, freshness checks are on.
    steps.spec["data"] = dict(BASE["data"])  # type: ignore[call-overload]
    steps.spec["monitoring"] = {}
    steps.write()
    assert steps.step() == {
        "data.contract": ("fail", "partial"),
        "data.freshness": ("fail", "pass"),
    }
    assert "contracts/raw.yaml configured" in steps.evidence("data.contract")
    assert "time_hour at most" in steps.evidence("data.freshness")

    # 3. v1 goes to production with no gates and no approval.
    with steps.open() as project:
        assert promote(project, f"{MODEL}@1", "production", actor=ANA).outcome == "promoted"
    assert steps.step() == {
        "reproducibility.dataset": ("n/a", "pass"),
        "reproducibility.code": ("n/a", "fail"),
        "reproducibility.environment": ("n/a", "pass"),
        "release.used": ("n/a", "fail"),
        "monitoring.recent": ("n/a", "fail"),
        "data.contract": ("partial", "pass"),
    }
    assert f"{MODEL}@1: dataset " in steps.evidence("reproducibility.dataset")
    assert "20,000 rows) in the store" in steps.evidence("reproducibility.dataset")
    assert "recorded no git commit" in steps.evidence("reproducibility.code")
    assert "an evaluation with no gates, no approval" in steps.evidence("release.used")
    assert "passed: " in steps.evidence("data.contract")

    # 4. Gates and approvals are configured, and v2 is promoted through them.
    steps.spec["release"] = {"gates": GATES, "approvals": {"required": 1}}
    steps.write()
    with steps.open() as project:
        _promote_approved(project, 2)
    assert steps.step() == {
        "release.gates": ("fail", "pass"),
        "release.approvals": ("fail", "pass"),
        "release.used": ("fail", "pass"),
    }
    assert "4/4 gates passed, approved by ben" in steps.evidence("release.used")

    # 5. The project goes into git; v4 is trained from the commit and promoted the same way.
    (release_project / ".gitignore").write_text(".keel/\n__pycache__/\n*-scored.parquet\n")
    _git(release_project, "init", "-q")
    _git(release_project, "add", "-A")
    _git(release_project, "commit", "-q", "-m", "flights")
    steps.spec["training"] = {**BASE["training"], "params": {"max_iter": 140}}  # type: ignore[dict-item]
    steps.write()
    _git(release_project, "commit", "-q", "-am", "140 iterations")
    with steps.open() as project:
        trained = train(project, as_of=AS_OF)
        assert trained.registered is not None and trained.registered.version == 4
        _promote_approved(project, 4)
    assert steps.step() == {"reproducibility.code": ("fail", "pass")}
    assert "is in the repository, clean" in steps.evidence("reproducibility.code")
    assert (steps.now.level, steps.now.level_name) == (2, "controlled")

    # 6. Production is served (batch-scored) with the prediction log on.
    steps.spec["serving"] = {}
    steps.spec["data"] = {**BASE["data"], "entity_key": KEY}  # type: ignore[dict-item]
    steps.spec["monitoring"] = {"skew": False}
    steps.write()
    raw = pq.read_table(release_project / "raw.parquet")
    pq.write_table(raw.slice(0, 400), tmp_path / "requests.parquet")
    with steps.open() as project:
        predict_batch(
            project,
            tmp_path / "requests.parquet",
            tmp_path / "scored.parquet",
            f"{MODEL}@production",
        )
    assert steps.step() == {"monitoring.serving": ("fail", "pass")}
    assert f"{MODEL}@4: 400 predictions logged" in steps.evidence("monitoring.serving")
    assert steps.evidence("data.skew") == "monitoring.skew is false"

    # 7. Alert rules are written down, and the monitor runs.
    steps.spec["monitoring"] = {"skew": False, "alerts": RULES}
    steps.write()
    with steps.open() as project:
        monitor(project, model=MODEL)
    assert steps.step() == {
        "monitoring.recent": ("fail", "pass"),
        "monitoring.alerts": ("partial", "pass"),
    }
    assert "last monitored under a minute ago" in steps.evidence("monitoring.recent")
    assert steps.evidence("monitoring.alerts") == "2 rule(s) in keel.yaml: feature-drift, low-auc"
    assert (steps.now.level, steps.now.level_name) == (3, "monitored")

    # 8. Retraining: first on a schedule only, then on production signals.
    steps.spec["retraining"] = {"triggers": {"schedule": "7d"}}
    steps.write()
    assert steps.step() == {"retraining.triggers": ("fail", "partial")}
    assert "only a schedule (every 1w)" in steps.evidence("retraining.triggers")
    steps.spec["retraining"] = {
        "triggers": {"performance": {"metric": "roc_auc", "below": 0.65}, "new_labels": 1000}
    }
    steps.write()
    assert steps.step() == {"retraining.triggers": ("partial", "pass")}
    assert steps.evidence("retraining.triggers") == (
        "retrains on roc_auc below 0.65, 1,000 new labels"
    )

    # 9. Skew checks: on, then measured by the next monitor run.
    steps.spec["monitoring"] = {"alerts": RULES}
    steps.write()
    assert steps.step() == {"data.skew": ("fail", "partial")}
    with steps.open() as project:
        monitor(project, model=MODEL)
    assert steps.step() == {"data.skew": ("partial", "pass")}
    assert "skew signal(s) recorded" in steps.evidence("data.skew")

    final = steps.now
    assert all(item.status == "pass" and item.fix is None for item in final.items)
    assert (final.score, final.max_score, final.level, final.level_name) == (30, 30, 4, "operated")
    assert final.next_level is None and final.blocking() == []
    levels = [card.level for card in steps.cards]
    assert levels == sorted(levels) and levels[0] == 0


def test_scorecard_document_has_every_item_with_its_fields(release_project: Path) -> None:
    with Project.open(release_project, env=ENV) as project:
        document = scorecard(project).to_dict()
    assert set(document) >= {"score", "max_score", "level", "level_name", "items", "levels"}
    assert [level["name"] for level in document["levels"]] == [
        "ad hoc",
        "reproducible",
        "controlled",
        "monitored",
        "operated",
    ]
    assert len(document["items"]) == 15
    for item in document["items"]:
        assert set(item) == {
            "area",
            "key",
            "title",
            "status",
            "evidence",
            "fix",
            "points",
            "max_points",
        }
        assert item["status"] in ("pass", "partial", "fail", "n/a")
        assert item["key"].startswith(item["area"] + ".")
        assert (item["fix"] is None) == (item["status"] == "pass")


@pytest.mark.parametrize(
    ("partial", "level"),
    [
        (None, 4),
        ("reproducibility.code", 0),
        ("release.used", 1),
        ("data.freshness", 2),
        ("data.skew", 3),
    ],
)
def test_a_level_needs_every_item_of_it_and_below_to_pass(partial: str | None, level: int) -> None:
    keys = [key for stage in LEVELS for key in stage.requires]
    items = [
        Item(
            "a",
            key,
            key,
            "partial" if key == partial else "pass",
            "",
            None,
            1 if key == partial else 2,
            2,
        )
        for key in keys
    ]
    assert level_of(items).number == level
    card = build_scorecard(items)
    assert card.score == 2 * len(keys) - (1 if partial else 0)
    if partial is not None:
        assert [i.key for i in card.blocking()] == [partial]


def test_every_item_is_required_by_exactly_one_level(release_project: Path) -> None:
    keys = [key for stage in LEVELS for key in stage.requires]
    with Project.open(release_project, env=ENV) as project:
        card = scorecard(project)
    assert sorted(keys) == sorted(i.key for i in card.items)


def test_a_missing_dataset_or_unreachable_commit_fails_reproducibility(
    release_project: Path,
) -> None:
    write_spec(release_project, {"approvals": {"required": 0}})
    with Project.open(release_project, env=ENV) as project:
        assert promote(project, f"{MODEL}@1", "production", actor=ANA).outcome == "promoted"
        version = project.metadata.models.get(MODEL, 1)
        dataset = project.metadata.runs.get(version.run_id).dataset
        assert dataset is not None
        parquet = project.metadata.datasets.get(dataset).parquet
        project.artifacts.delete(parquet)
        card = scorecard(project)
    item = card.item("reproducibility.dataset")
    assert item.status == "fail"
    assert item.evidence == f"{MODEL}@1: dataset {dataset.short} is recorded, its data is missing"
    assert item.fix == "keel train, then keel promote MODEL@NEW --to production"


def test_after_a_rollback_the_release_that_first_put_the_version_there_counts(
    release_project: Path,
) -> None:
    from keel.release.service import rollback

    gates = [{"type": "contract_passed"}, {"type": "inference_contract", "samples": 20}]
    write_spec(release_project, {"gates": gates, "approvals": {"required": 1}})
    with Project.open(release_project, env=ENV) as project:
        _promote_approved(project, 1)
        first = project.metadata.audit.events(kinds=["alias.moved"])[-1]
        _promote_approved(project, 2)
        rollback(project, MODEL, actor=ANA, reason="v2 misbehaves")
        card = scorecard(project)
    item = card.item("release.used")
    assert item.status == "pass"
    assert item.evidence == (
        f"{MODEL}@1: event {first.seq} by ben, 2/2 gates passed, approved by ben"
    )


def test_uncommitted_changes_are_partial_and_a_commit_missing_from_the_clone_fails(
    release_project: Path,
) -> None:
    write_spec(release_project, {"approvals": {"required": 0}})
    (release_project / ".gitignore").write_text(".keel/\n__pycache__/\n")
    _git(release_project, "init", "-q")
    _git(release_project, "add", "-A")
    _git(release_project, "commit", "-q", "-m", "flights")
    train_py = release_project / "train.py"
    train_py.write_text(train_py.read_text() + "\n# tuned by hand, not committed\n")
    with Project.open(release_project, env=ENV) as project:
        trained = train(project, as_of=AS_OF)
        assert trained.registered is not None
        ref = trained.registered.ref
        assert promote(project, ref, "production", actor=ANA).outcome == "promoted"
        commit = project.metadata.runs.get(trained.run_id).git_commit
        assert commit is not None
        dirty = scorecard(project).item("reproducibility.code")
        assert (dirty.status, dirty.evidence) == (
            "partial",
            f"{ref}: commit {commit[:12]} plus uncommitted changes",
        )
        shutil.rmtree(release_project / ".git")  # a fresh clone without that commit
        _git(release_project, "init", "-q")
        missing = scorecard(project).item("reproducibility.code")
    assert (missing.status, missing.evidence) == (
        "fail",
        f"{ref}: commit {commit[:12]} is not in this repository",
    )
    assert missing.fix is not None and missing.fix.startswith("commit the project")


def test_a_trigger_on_a_lower_is_better_metric_is_scored_with_its_side(
    release_project: Path,
) -> None:
    # log_loss is lower-is-better: its trigger fires above a threshold, which the item names.
    write_spec(
        release_project,
        retraining={"triggers": {"performance": {"metric": "log_loss", "above": 0.6}}},
    )
    with Project.open(release_project, env=ENV) as project:
        card = scorecard(project)
    [item] = [i for i in card.items if i.key == "retraining.triggers"]
    assert item.status == "pass", item
    assert "log_loss above 0.6" in item.evidence
