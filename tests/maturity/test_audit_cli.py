"""`keel audit`: the scorecard on the command line, as text and JSON, and as a CI check."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.cli import Keel
from tests.fixtures.trained import MODEL, write_spec

OWNERS = {"data": "dana", "training": "tom", "release": "rita", "monitoring": "mo"}


def test_audit_prints_one_line_per_item_with_its_evidence_and_fix(
    keel: Keel, release_project: Path
) -> None:
    write_spec(release_project, {"approvals": {"required": 0}}, owners=OWNERS)
    assert keel("-C", release_project, "promote", f"{MODEL}@2", "--to", "production").code == 0
    result = keel("-C", release_project, "audit")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith(f"maturity of {MODEL}: level 0 (ad hoc), score ")
    items = [line for line in lines if line.startswith(("  PASS", "  PART", "  FAIL", "  n/a"))]
    assert len(items) == 15
    code = next(line for line in items if "reproducibility.code" in line)
    assert code.startswith("  FAIL  0/2  reproducibility.code")
    assert f"{MODEL}@2: its run recorded no git commit (trained outside git)" in code
    fix = lines[lines.index(code) + 1]
    assert fix.strip() == (
        "fix: commit the project (git add -A && git commit), then keel train, then "
        "keel promote MODEL@NEW --to production"
    )
    stages = next(line for line in items if "ownership.stages" in line)
    assert stages.startswith("  PASS  2/2") and "release: rita" in stages
    assert lines[lines.index(stages) + 1].startswith("  PASS")  # no fix line under a pass
    assert "next: level 1 (reproducible) needs reproducibility.code" in result.out


def test_audit_json_has_every_item_and_the_level(keel: Keel, release_project: Path) -> None:
    result = keel("-C", release_project, "audit", "--json")
    assert result.code == 0
    document = result.json()
    assert document["ok"] is True and document["project"] == MODEL
    assert (document["level"], document["level_name"]) == (0, "ad hoc")
    assert document["max_score"] == 30
    assert document["score"] == sum(item["points"] for item in document["items"])
    assert document["next_level"]["name"] == "reproducible"
    keys = [item["key"] for item in document["items"]]
    assert keys[:2] == ["ownership.stages", "ownership.alerts"]
    assert len(keys) == len(set(keys)) == 15
    stages = document["items"][0]
    assert stages["status"] == "fail" and stages["points"] == 0
    assert stages["evidence"].endswith("(4 of 4 unowned)")


@pytest.mark.parametrize(
    ("options", "code", "shortfall"),
    [
        ((), 0, None),
        (("--min-level", "0"), 0, None),
        (("--min-level", "1"), 1, "BELOW --min-level 1 (reproducible): level 0 (ad hoc)"),
        (("--min-score", "1"), 0, None),
        (("--min-score", "30"), 1, "BELOW --min-score 30: score "),
    ],
)
def test_min_level_and_min_score_make_audit_a_ci_check(
    keel: Keel,
    release_project: Path,
    options: tuple[str, ...],
    code: int,
    shortfall: str | None,
) -> None:
    result = keel("-C", release_project, "audit", *options)
    assert result.code == code, result.out + result.err
    if shortfall is not None:
        assert shortfall in result.out
    document = keel("-C", release_project, "audit", *options, "--json").json()
    assert document["ok"] is (code == 0)
    assert bool(document["required"]["shortfall"]) is (code != 0)


def test_min_level_beyond_the_top_is_a_usage_error(keel: Keel, release_project: Path) -> None:
    result = keel("-C", release_project, "audit", "--min-level", "5")
    assert result.code == 2
    assert "--min-level" in result.err
