"""SIGKILL of `keel train`, `keel promote` and `keel approve` at the points between their
writes, on SQLite and PostgreSQL: afterwards the store is consistent (the audit chain
verifies, nothing is half-recorded), no incomplete version holds an alias or can be
promoted or served, and running the command again completes the work.

Each kill happens at a named pause point (`KEEL_TEST_PAUSE_AT`, keel.faults): the process
announces the point on stderr and sleeps there, so the kill lands in the window every time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from keel.project import Project
from tests.fixtures.copies import run_keel
from tests.fixtures.trained import AS_OF, BASE, MODEL

pytestmark = [pytest.mark.slow, pytest.mark.load]

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def kill_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flights project ready to train (small data, its contract), trained never."""
    import pyarrow.parquet as pq

    from keel.contracts import infer_contract, write_contract
    from tests.pipeline.test_train import EXAMPLE, _raw_sample

    folder = tmp_path_factory.mktemp("kills") / "flights"
    Project.init(folder, env={"KEEL_USER": "ana"}).close()
    for name in ("features.py", "train.py"):
        shutil.copy(EXAMPLE / "project" / name, folder / name)
    raw = _raw_sample(4_000)
    pq.write_table(raw, folder / "raw.parquet")
    write_contract(
        infer_contract(raw, timestamp="time_hour", source="raw.parquet", inferred_at=AS_OF),
        folder / "contracts" / "raw.yaml",
    )
    spec = {**BASE, "release": {"approvals": {"required": 1, "aliases": ["production"]}}}
    (folder / "keel.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


@pytest.fixture(params=DATABASES)
def project_dir(request: pytest.FixtureRequest, kill_template: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "flights"
    shutil.copytree(kill_template, folder, ignore=shutil.ignore_patterns(".keel"))
    (folder / ".env.json").write_text(json.dumps(_env(request)))
    return folder


def _env(request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"KEEL_USER": "ana", "OMP_NUM_THREADS": "1"}
    if request.param == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    return env


def _keel(folder: Path, *args: str, user: str = "ana") -> subprocess.CompletedProcess[str]:
    """`keel ARGS` run to its end, in this process (as `keel` in the folder would): only the
    killed commands need a process of their own."""
    env = {**json.loads((folder / ".env.json").read_text()), "KEEL_USER": user}
    done = run_keel(folder, env, *args)
    return subprocess.CompletedProcess(["keel", *args], done.code, done.out, done.err)


def _kill_at(folder: Path, point: str, *args: str, user: str = "ana") -> None:
    """Run `keel ARGS` until it reaches `point`, then SIGKILL it there."""
    env = {
        **os.environ,
        **json.loads((folder / ".env.json").read_text()),
        "KEEL_USER": user,
        "KEEL_TEST_PAUSE_AT": point,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "keel", "-C", str(folder), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    seen: list[str] = []
    try:
        for line in process.stderr:  # ends when the process exits
            seen.append(line)
            if line.strip() == f"keel: paused at {point}":
                process.send_signal(signal.SIGKILL)
                break
    finally:
        if process.poll() is None:
            process.kill()  # a no-op after the SIGKILL above; else it never paused
        process.wait(timeout=60)
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL, (
        f"`keel {' '.join(args)}` never reached {point} (exit {process.returncode}):\n"
        + "".join(seen[-20:])
    )


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def _assert_consistent(folder: Path) -> None:
    """The chain verifies, and every alias points at a usable version."""
    verified = _keel(folder, "audit-log", "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    shown = _keel(folder, "models", "show", MODEL, "--json")
    if shown.returncode == 3:  # nothing registered yet
        return
    model = _json(shown)["model"]
    states = {v["version"]: v["status"] for v in model["versions"]}
    for alias, version in model["aliases"].items():
        assert states[version] == "usable", f"{alias} -> v{version}: {states[version]}"


def _train(folder: Path) -> subprocess.CompletedProcess[str]:
    return _keel(folder, "train", "--as-of", AS_OF.isoformat(), "--json")


@pytest.mark.parametrize("point", ["train.registered", "train.profiled"])
def test_a_train_killed_before_its_run_completes_leaves_no_usable_version(
    project_dir: Path, point: str
) -> None:
    _kill_at(project_dir, point, "train", "--as-of", AS_OF.isoformat())

    shown = _json(_keel(project_dir, "models", "show", MODEL, "--json"))["model"]
    assert shown["aliases"] == {}  # candidate never points at it
    (v1,) = shown["versions"]
    assert v1["status"].startswith("incomplete: its run ")
    (listed,) = _json(_keel(project_dir, "models", "list", "--json"))["models"]
    assert listed["latest_status"] == v1["status"]
    assert "^ v1 incomplete: its run " in _keel(project_dir, "models", "list").stdout
    assert "not completed" in v1["status"]  # running, until the process is found dead
    refused = _keel(project_dir, "promote", f"{MODEL}@1", "--to", "staging")
    assert refused.returncode == 4
    assert "flights-delay@1 cannot be promoted to staging" in refused.stderr
    assert "its registration did not complete" in refused.stderr
    raw, out = str(project_dir / "raw.parquet"), str(project_dir / "out.parquet")
    served = _keel(project_dir, "predict-batch", raw, out, "--model", f"{MODEL}@1")
    assert served.returncode == 4 and "flights-delay@1 cannot be served" in served.stderr
    assert not (project_dir / "out.parquet").exists()
    _assert_consistent(project_dir)

    rerun = _train(project_dir)
    assert rerun.returncode == 0, rerun.stderr
    shown = _json(_keel(project_dir, "models", "show", MODEL, "--json"))["model"]
    assert shown["aliases"] == {"candidate": 2}
    states = {v["version"]: v["status"] for v in shown["versions"]}
    assert states[2] == "usable"
    assert states[1].startswith("retired: its registration did not complete")
    text = _keel(project_dir, "models", "show", MODEL).stdout
    assert "^ retired: its registration did not complete" in text
    retired = _json(_keel(project_dir, "audit-log", "--kind", "model.retired", "--json"))
    assert [(e["version"], e["actor"]) for e in retired["events"]] == [(1, "ana")]
    again = _keel(project_dir, "promote", f"{MODEL}@1", "--to", "staging")
    assert again.returncode == 4 and "it was retired" in again.stderr
    assert _keel(project_dir, "promote", f"{MODEL}@2", "--to", "staging").returncode == 0
    _assert_consistent(project_dir)


def test_a_train_killed_after_its_run_completed_is_finished_by_the_rerun(
    project_dir: Path,
) -> None:
    _kill_at(project_dir, "train.completed", "train", "--as-of", AS_OF.isoformat())
    shown = _json(_keel(project_dir, "models", "show", MODEL, "--json"))["model"]
    assert shown["aliases"] == {}
    assert [v["status"] for v in shown["versions"]] == ["usable"]
    _assert_consistent(project_dir)

    rerun = _train(project_dir)
    assert rerun.returncode == 0, rerun.stderr
    shown = _json(_keel(project_dir, "models", "show", MODEL, "--json"))["model"]
    assert shown["aliases"] == {"candidate": 1}
    assert len(shown["versions"]) == 1  # nothing new: the same package, completed
    _assert_consistent(project_dir)


def test_promote_and_approve_killed_between_their_writes(project_dir: Path) -> None:
    assert _train(project_dir).returncode == 0

    _kill_at(project_dir, "promote.evaluated", "promote", f"{MODEL}@1", "--to", "staging")
    evaluations = _json(_keel(project_dir, "audit-log", "--kind", "gates.evaluated", "--json"))
    assert len(evaluations["events"]) == 1  # recorded whole, before the kill
    assert (
        "staging"
        not in _json(_keel(project_dir, "models", "show", MODEL, "--json"))["model"]["aliases"]
    )
    _assert_consistent(project_dir)
    assert _keel(project_dir, "promote", f"{MODEL}@1", "--to", "staging").returncode == 0

    requested = _keel(project_dir, "promote", f"{MODEL}@1", "--to", "production", "--json")
    assert requested.returncode == 8, requested.stderr
    request_id = _json(requested)["request"]["id"]
    _kill_at(project_dir, "approve.deciding", "approve", request_id, user="ben")
    request = _json(_keel(project_dir, "requests", "show", request_id, "--json"))
    assert json.dumps(request).count('"pending"') >= 1
    _assert_consistent(project_dir)

    _kill_at(project_dir, "approve.decided", "approve", request_id, user="ben")
    aliases = _json(_keel(project_dir, "models", "show", MODEL, "--json"))["model"]["aliases"]
    assert aliases["production"] == 1  # the approval and the move committed together
    _assert_consistent(project_dir)
    again = _keel(project_dir, "approve", request_id, user="ben")
    assert again.returncode != 0 and "pending" in again.stderr
