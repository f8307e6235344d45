"""Only complete versions are released; a version from before the reference profile was part
of registration is completed on first use instead of being stranded by an upgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from keel.project import Project
from tests.fixtures.cli import Keel
from tests.fixtures.trained import MODEL, write_spec

NO_APPROVALS = {"approvals": {"required": 0}}


def test_a_released_version_without_its_profile_gets_one_on_use(
    keel: Keel, release_project: Path
) -> None:
    write_spec(release_project, NO_APPROVALS)
    # What an older keel could leave: registration tolerated a profile that failed to build.
    with sqlite3.connect(release_project / ".keel" / "keel.db") as conn:
        conn.execute("DELETE FROM reference_profiles WHERE model = ? AND version = 1", (MODEL,))
    shown = keel("-C", release_project, "models", "show", MODEL, "--json").json()["model"]
    states = {v["version"]: v["status"] for v in shown["versions"]}
    assert states[1] == "incomplete: it has no reference profile"

    promoted = keel("-C", release_project, "promote", f"{MODEL}@1", "--to", "staging")
    assert promoted.code == 0, promoted.err
    with Project.open(release_project, env={"KEEL_USER": "ana"}) as project:
        assert project.metadata.monitoring.reference(MODEL, 1) is not None
    assert keel("-C", release_project, "promote", f"{MODEL}@2", "--to", "staging").code == 0
    rolled = keel("-C", release_project, "rollback", MODEL, "--alias", "staging", "--reason", "x")
    assert rolled.code == 0, rolled.err


def test_a_version_whose_run_failed_cannot_be_rolled_back_to(
    keel: Keel, release_project: Path
) -> None:
    write_spec(release_project, NO_APPROVALS)
    assert keel("-C", release_project, "promote", f"{MODEL}@1", "--to", "staging").code == 0
    assert keel("-C", release_project, "promote", f"{MODEL}@2", "--to", "staging").code == 0
    with Project.open(release_project, env={"KEEL_USER": "ana"}) as project:
        run_id = project.metadata.models.get(MODEL, 1).run_id
    with sqlite3.connect(release_project / ".keel" / "keel.db") as conn:
        conn.execute("UPDATE runs SET status = 'failed', error = 'killed' WHERE id = ?", (run_id,))
    refused = keel("-C", release_project, "rollback", MODEL, "--alias", "staging", "--reason", "x")
    assert refused.code == 4
    assert f"{MODEL}@1 cannot be rolled back to as staging" in refused.err
    assert f"its run {run_id} failed, not completed: killed" in refused.err
    with Project.open(release_project, env={"KEEL_USER": "ana"}) as project:
        assert project.metadata.releases.holder(MODEL, "staging") == 2
