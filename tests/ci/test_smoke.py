"""`keel smoke-test`: the pipeline trained on a sample in a throwaway store, one JUnit case
per step; a broken step names the problem and the project's own stores stay untouched."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from keel.contracts import NumericRange, read_contract, write_contract
from keel.project import Project
from tests.ci.conftest import ENV
from tests.fixtures.cli import Keel

STEPS = ["sample", "contract", "features", "train", "metrics", "package"]


def _tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` and the hash of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _cases(junit: Path) -> dict[str, ET.Element]:
    root = ET.parse(junit).getroot()
    return {case.get("name", ""): case for case in root.iter("testcase")}


def test_smoke_test_trains_a_sample_and_leaves_the_project_untouched(
    keel: Keel, smoke_project: Path
) -> None:
    state_before = _tree(smoke_project / ".keel")
    junit = smoke_project / "reports" / "smoke.xml"

    result = keel(
        "-C", smoke_project, "smoke-test", "--rows", "1000",
        "--junit", junit, "--json",
    )  # fmt: skip

    assert result.code == 0, result.out + result.err
    document = result.json()
    assert document["ok"] is True and document["rows"] == 1000
    steps = {step["name"]: step for step in document["steps"]}
    assert list(steps)[: len(STEPS)] == STEPS
    assert all(step["status"] == "passed" for step in steps.values()), steps
    # The metrics come from the holdout, and are real numbers.
    assert "on 200 holdout rows" in steps["metrics"]["message"]
    assert set(document["metrics"]) == {"roc_auc", "log_loss"}
    assert all(math.isfinite(value) for value in document["metrics"].values())
    assert "identical predictions" in steps["package"]["message"]
    inference = [name for name in steps if name.startswith("inference: ")]
    assert any("refuses a request without input" in name for name in inference)
    # The JUnit report holds the same cases, all passed.
    cases = _cases(junit)
    assert list(cases) == list(steps)
    outcomes = [child.tag for case in cases.values() for child in case]
    assert "failure" not in outcomes and "skipped" not in outcomes
    # Nothing reached the project's own stores.
    assert _tree(smoke_project / ".keel") == state_before
    with Project.open(smoke_project, env=ENV) as project:
        assert project.metadata.datasets.count() == 0
        assert project.metadata.artifacts.count() == 0
        assert list(project.metadata.models.list_models()) == []


def _break_features(folder: Path) -> None:
    with (folder / "features.py").open("a") as out:
        out.write("\n\n_build = build\n\ndef build(raw):\n    return _build(raw).iloc[:-1]\n")


def _break_training(folder: Path) -> None:
    (folder / "train.py").write_text(
        "def train(ctx, features, target):\n    raise ValueError('learning rate too high')\n"
    )


def _train_returns_nothing(folder: Path) -> None:
    (folder / "train.py").write_text("def train(ctx, features, target):\n    return None\n")


def _batch_dependent_features(folder: Path) -> None:
    # Features that depend on the batch they arrive in: training and serving disagree.
    with (folder / "features.py").open("a") as out:
        out.write(
            "\n\n_build = build\n\ndef build(raw):\n"
            "    features = _build(raw)\n"
            "    features['distance'] = features['distance'] / len(raw)\n"
            "    return features\n"
        )


def _tighten_contract(folder: Path) -> None:
    path = folder / "contracts" / "raw.yaml"
    contract = read_contract(path)
    columns = tuple(
        dataclasses.replace(c, range=NumericRange(0, 100)) if c.name == "distance" else c
        for c in contract.columns
    )
    write_contract(dataclasses.replace(contract, columns=columns), path)


@pytest.mark.parametrize(
    ("breakage", "step", "message"),
    [
        (_tighten_contract, "contract", "above_max on distance"),
        (_break_features, "features", "returned 999 rows for 1,000 raw rows"),
        (_break_training, "train", "ValueError: learning rate too high"),
        (_train_returns_nothing, "train", "returned None"),
        (_batch_dependent_features, "package", "predicts differently"),
    ],
)
def test_a_failing_step_names_the_problem_and_skips_what_needs_it(
    keel: Keel,
    smoke_project: Path,
    breakage: object,
    step: str,
    message: str,
) -> None:
    breakage(smoke_project)  # type: ignore[operator]
    junit = smoke_project / "smoke.xml"

    result = keel(
        "-C", smoke_project, "smoke-test", "--rows", "1000",
        "--junit", junit,
    )  # fmt: skip

    assert result.code == 1, result.out + result.err
    assert f"FAIL  {step}: " in result.out and message in result.out
    assert "smoke test FAILED: 1 of" in result.out
    cases = _cases(junit)
    failure = cases[step].find("failure")
    assert failure is not None and message in (failure.get("message") or "")
    later = list(cases)[list(cases).index(step) + 1 :]
    assert later, "the steps after a failure are reported, as skipped"
    for name in later:
        skipped = cases[name].find("skipped")
        assert skipped is not None and f"step '{step}' failed" in (skipped.get("message") or "")
    root = ET.parse(junit).getroot()
    assert root.get("failures") == "1" and root.get("skipped") == str(len(later))


def test_a_project_that_cannot_train_is_a_usage_error(keel: Keel, smoke_project: Path) -> None:
    spec = (smoke_project / "keel.yaml").read_text()
    (smoke_project / "keel.yaml").write_text(spec.split("features:")[0] + "metrics: [roc_auc]\n")

    result = keel("-C", smoke_project, "smoke-test", "--json")

    assert result.code == 2
    error = result.json()["error"]
    assert "features, training" in error["message"]
    assert {p["key"] for p in error["problems"]} == {"features", "training"}


def test_too_few_rows_is_refused_before_anything_runs(keel: Keel, smoke_project: Path) -> None:
    result = keel("-C", smoke_project, "smoke-test", "--rows", "5", "--junit", "out.xml")

    assert result.code == 2
    assert "--rows" in result.err
    assert not Path("out.xml").exists()


def test_the_json_report_is_one_document(keel: Keel, smoke_project: Path) -> None:
    _break_training(smoke_project)
    result = keel(
        "-C", smoke_project, "smoke-test", "--rows", "200", "--json",
    )  # fmt: skip
    assert result.code == 1
    document = json.loads(result.out)
    failed = [s for s in document["steps"] if s["status"] == "failed"]
    assert [s["name"] for s in failed] == ["train"]
    assert "raise ValueError" in failed[0]["details"]  # the user's traceback, to find the line
