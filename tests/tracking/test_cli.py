"""`keel runs list|show`, and a run whose process is killed: failed, never left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from keel.project import Project
from tests.cli.conftest import Keel


def _project(tmp_path: Path) -> Project:
    return Project.init(tmp_path, env={"KEEL_USER": "ana"})


def test_runs_list_and_show(keel: Keel, tmp_path: Path) -> None:
    with _project(tmp_path) as project:
        assert "no runs yet" in keel("runs", "list").out
        with project.start_run(params={"lr": 0.1}, seed=3, git_commit="abc123") as good:
            for step in range(3):
                good.log_metric("loss", 1.0 / (step + 1))
            good.set_tag("team", "ml")
            good.log_artifact(b"weights", "model")
        with pytest.raises(RuntimeError), project.start_run() as bad:
            raise RuntimeError("out of memory")

    listed = keel("runs", "list", "--json")
    assert listed.code == 0, listed.err
    assert [(r["id"], r["status"]) for r in listed.json()["runs"]] == [
        (bad.id, "failed"),
        (good.id, "completed"),
    ]
    assert [
        r["id"] for r in keel("runs", "list", "--status", "completed", "--json").json()["runs"]
    ] == [good.id]
    assert len(keel("runs", "list", "--limit", "1", "--json").json()["runs"]) == 1
    text = keel("runs", "list").out
    assert good.id in text and "completed" in text and "ana" in text

    shown = keel("runs", "show", good.id[:20], "--json")
    assert shown.code == 0, shown.err
    run = shown.json()["run"]
    assert run["id"] == good.id and run["status"] == "completed"
    assert run["params"] == {"lr": "0.1"}
    assert run["metrics"] == [{"key": "loss", "last": 1 / 3, "step": 2, "count": 3}]
    assert run["tags"] == {"team": "ml"}
    assert [a["name"] for a in run["artifacts"]] == ["model"]
    assert run["lineage"]["git_commit"] == "abc123" and run["lineage"]["seed"] == 3
    assert run["duration_seconds"] >= 0

    human = keel("runs", "show", bad.id)
    assert human.code == 0
    assert "RuntimeError: out of memory" in human.out and "failed" in human.out


def test_runs_show_errors(keel: Keel, tmp_path: Path) -> None:
    _project(tmp_path).close()
    missing = keel("runs", "show", "0123456789abcdef", "--json")
    assert missing.code == 3
    assert missing.json()["error"]["code"] == "not_found"
    assert keel("runs", "show", "zz").code == 2
    assert keel("runs", "list", "--status", "paused").code == 2


@pytest.mark.slow
@pytest.mark.load
def test_a_killed_run_is_listed_as_failed(keel: Keel, tmp_path: Path) -> None:
    _project(tmp_path).close()
    script = (
        "import sys, time\n"
        "from keel.project import Project\n"
        "project = Project.open(sys.argv[1])\n"
        "run = project.start_run(params={'lr': 0.1})\n"
        "run.log_metric('loss', 0.5)\n"
        "print(run.id, flush=True)\n"
        "time.sleep(120)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "KEEL_USER": "ana"},
    )
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        assert len(run_id) == 32, run_id
        running = keel("runs", "list", "--json").json()["runs"]
        assert [(r["id"], r["status"]) for r in running] == [(run_id, "running")]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()

    listed = keel("runs", "list", "--json")
    assert listed.code == 0, listed.err
    document = listed.json()
    assert document["reaped"] == [run_id]
    (run,) = document["runs"]
    assert run["status"] == "failed"
    assert run["error"] == f"process {child.pid} on {run['host']} exited without finishing the run"
    assert run["ended_at"] is not None
    shown = keel("runs", "show", run_id, "--json").json()["run"]
    assert shown["status"] == "failed" and shown["params"] == {"lr": "0.1"}
