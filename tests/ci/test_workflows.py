"""`keel ci init github|gitlab`: workflow files that validate against the official schemas,
whose check jobs do what they say when run, and whose promotion step treats "pending
approval" as success."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from keel import __version__
from keel.project import Project
from tests.ci.conftest import ENV, EXAMPLE_AS_OF
from tests.fixtures.cli import Keel

CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}
FILES = {"github": ".github/workflows/keel.yml", "gitlab": ".gitlab-ci.yml"}


def _check_commands(kind: str, document: dict[str, Any]) -> list[str]:
    """The shell commands the workflow runs for a pull request, in order."""
    if kind == "github":
        steps = document["jobs"]["check"]["steps"]
        return [line for step in steps if "run" in step for line in step["run"].splitlines()]
    jobs = [
        job
        for name, job in document.items()
        if isinstance(job, dict) and job.get("stage") == "test"
    ]
    setup = document[".keel"]["before_script"]
    return [
        line for job in jobs for entry in [*setup, *job["script"]] for line in entry.splitlines()
    ]


def _release_commands(kind: str, document: dict[str, Any]) -> list[str]:
    if kind == "github":
        return [step["run"] for step in document["jobs"]["release"]["steps"] if "run" in step]
    return list(document["release"]["script"])


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_the_workflow_validates_against_the_official_schema(
    keel: Keel, example_project: Path, kind: str
) -> None:
    result = keel("-C", example_project, "ci", "init", kind, "--json")

    assert result.code == 0, result.out + result.err
    path = example_project / FILES[kind]
    assert result.json()["path"] == str(path)
    checked = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", SCHEMAS[kind], path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = path.read_text()
    document = yaml.safe_load(text)
    assert f'"keelml[sklearn]=={__version__}"' in text  # pinned to the keel that wrote it
    release = "\n".join(_release_commands(kind, document))
    assert "keel train" in release
    assert "keel contract-test flights-delay@latest --junit reports/inference.xml" in release
    assert "keel promote flights-delay@latest --to production" in release
    if kind == "github":
        assert document["jobs"]["release"]["needs"] == "check"
        assert "refs/heads/main" in document["jobs"]["release"]["if"]
        assert document["jobs"]["release"]["env"]["KEEL_DB_URL"] == "${{ secrets.KEEL_DB_URL }}"
        assert "KEEL_DB_URL" not in str(document["jobs"]["check"])  # forks run the checks
        uploads = [
            s for s in document["jobs"]["check"]["steps"] if "upload-artifact" in s.get("uses", "")
        ]
        assert uploads and uploads[0]["with"]["path"] == "reports/"
    else:
        assert document["stages"] == ["test", "release"]
        assert document["contract"]["artifacts"]["reports"]["junit"] == "reports/contract.xml"
        assert document["smoke-test"]["artifacts"]["reports"]["junit"] == "reports/smoke.xml"
        assert document["smoke-test"]["artifacts"]["when"] == "always"
        assert '$CI_COMMIT_BRANCH == "main"' in document["release"]["rules"][0]["if"]


def _run_keel_line(line: str, keel: Keel) -> tuple[int, str]:
    args = shlex.split(line)
    assert args[0] == "keel"
    if ">>" in args:  # `keel ci summary reports >> "$GITHUB_STEP_SUMMARY"`
        args = args[: args.index(">>")]
    result = keel(*args[1:])
    return result.code, result.out + result.err


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_the_check_jobs_commands_pass_on_a_fresh_example_project(
    keel: Keel, example_project: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    assert keel("-C", example_project, "ci", "init", kind, "--as-of", EXAMPLE_AS_OF).code == 0
    document = yaml.safe_load((example_project / FILES[kind]).read_text())
    commands = _check_commands(kind, document)
    assert any(line.startswith("python -m pip install") for line in commands)
    keel_lines = [line for line in commands if line.startswith("keel ")]
    assert [line.split()[1] for line in keel_lines][:2] == ["contract", "smoke-test"]

    monkeypatch.chdir(example_project)  # CI runs them in the checkout
    outputs = {}
    for line in keel_lines:
        code, output = _run_keel_line(line, keel)
        assert code == 0, f"{line}\n{output}"
        outputs[line.split()[1]] = output

    reports = sorted(path.name for path in (example_project / "reports").glob("*.xml"))
    assert reports == ["contract.xml", "smoke.xml"]
    for name in reports:
        root = ET.parse(example_project / "reports" / name).getroot()
        assert int(root.get("tests", "0")) > 5 and root.get("failures") == "0", name
    if kind == "github":
        assert "| :white_check_mark: | keel smoke-test flights-delay |" in outputs["ci"]
    # The checks used no store: the example's own is as `keel init` left it.
    with Project.open(example_project, env=ENV) as project:
        assert project.metadata.datasets.count() == 0
        assert project.metadata.artifacts.count() == 0


def _fake_keel(folder: Path, code: int) -> Path:
    """A `keel` that exits with `code`, to run the promotion step's shell as CI would."""
    folder.mkdir()
    script = folder / "keel"
    script.write_text(f"#!/bin/sh\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


@pytest.mark.parametrize(
    ("keel_exit", "step_exit"),
    [(0, 0), (8, 0), (4, 0), (1, 1), (6, 6)],
    ids=["promoted", "pending-approval", "already-production", "gate-refused", "store-down"],
)
@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_the_promotion_step_treats_pending_approval_as_success(
    keel: Keel, example_project: Path, tmp_path: Path, kind: str, keel_exit: int, step_exit: int
) -> None:
    assert keel("-C", example_project, "ci", "init", kind).code == 0
    document = yaml.safe_load((example_project / FILES[kind]).read_text())
    step = next(c for c in _release_commands(kind, document) if "keel promote" in c)
    fake = _fake_keel(tmp_path / "bin", keel_exit)
    # Both runners run scripts with errexit; GitHub's default shell is `bash -e`.
    shell = subprocess.run(
        ["bash", "-e", "-c", step.replace("${{ github.sha }}", "abc123")],
        env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert shell.returncode == step_exit, shell.stdout + shell.stderr
    if keel_exit == 8:
        assert "waits for approval" in shell.stdout


def test_an_existing_workflow_is_kept_without_force(keel: Keel, example_project: Path) -> None:
    path = example_project / FILES["github"]
    path.parent.mkdir(parents=True)
    path.write_text("name: mine\n")

    refused = keel("-C", example_project, "ci", "init", "github", "--json")

    assert refused.code == 4
    assert refused.json()["error"]["code"] == "conflict"
    assert path.read_text() == "name: mine\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["keel.yml"]  # no temp file left

    replaced = keel("-C", example_project, "ci", "init", "github", "--force")
    assert replaced.code == 0
    assert yaml.safe_load(path.read_text())["name"] == "keel"
    assert sorted(p.name for p in path.parent.iterdir()) == ["keel.yml"]


def test_branch_model_and_as_of_reach_the_workflow(keel: Keel, example_project: Path) -> None:
    result = keel(
        "-C", example_project, "ci", "init", "github", "--branch", "release/v2",
        "--model", "delays", "--as-of", EXAMPLE_AS_OF, "--rows", "500",
    )  # fmt: skip
    assert result.code == 0, result.err
    document = yaml.safe_load((example_project / FILES["github"]).read_text())
    assert document[True]["push"]["branches"] == ["release/v2"]  # YAML 1.1 reads `on` as True
    assert document["jobs"]["release"]["if"].endswith("'refs/heads/release/v2'")
    commands = "\n".join(
        _check_commands("github", document) + _release_commands("github", document)
    )
    assert (
        f"keel contract check data/raw --junit reports/contract.xml --now {EXAMPLE_AS_OF}"
        in commands
    )
    assert "keel smoke-test --rows 500 --junit reports/smoke.xml" in commands
    assert f"keel train --as-of {EXAMPLE_AS_OF}" in commands
    assert "keel promote delays@latest" in commands


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [("--branch", "main; rm -rf /", "--branch"), ("--model", "Not A Name", "--model")],
)
def test_bad_options_are_refused_and_nothing_is_written(
    keel: Keel, example_project: Path, option: str, value: str, named: str
) -> None:
    result = keel("-C", example_project, "ci", "init", "gitlab", option, value)
    assert result.code == 2
    assert named in result.err
    assert not (example_project / FILES["gitlab"]).exists()


def test_without_a_data_contract_the_workflow_has_no_contract_check(
    keel: Keel, example_project: Path
) -> None:
    spec = example_project / "keel.yaml"
    spec.write_text(spec.read_text().replace("  contract: contracts/raw.yaml\n", ""))
    assert keel("-C", example_project, "ci", "init", "gitlab").code == 0
    document = yaml.safe_load((example_project / FILES["gitlab"]).read_text())
    assert "contract" not in document and "smoke-test" in document


def test_outside_a_project_init_says_where_to_start(keel: Keel) -> None:
    result = keel("ci", "init", "github")
    assert result.code == 2
    assert "keel init" in result.err
