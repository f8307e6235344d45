"""`keel ci init github|gitlab`: a CI workflow that checks every change and releases from main.

On every pull request (GitHub) or merge request (GitLab), and every push:
  1. install keelml, pinned to the keel version that wrote the file;
  2. `keel contract check` of the configured data, as JUnit;
  3. `keel smoke-test`: the pipeline trained on a sample in a throwaway store, ending with the
     inference contract test of the model it trained, as JUnit;
  4. the reports published (GitHub: an artifact and the job summary; GitLab: `reports: junit`).
On the main branch only, once those passed, with the shared stores from CI secrets:
  5. `keel train` (registers a new version when anything changed);
  6. `keel contract-test MODEL@latest` on the registered version;
  7. `keel promote MODEL@latest --to production`: promoted (0) and pending approval (8) both
     succeed, as does "already in production" (4); a refused gate fails the job.

The check jobs use no secrets, so pull requests from forks run them too.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from keel.errors import ConfigError, Conflict

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = [
    "KINDS",
    "Kind",
    "WorkflowOptions",
    "options_for",
    "render",
    "workflow_path",
    "write_workflow",
]

Kind = Literal["github", "gitlab"]
KINDS: Final[tuple[Kind, ...]] = ("github", "gitlab")
#: The Python CI runs: the one this keel runs on, as training records it in every lock, so
#: CI trains in the interpreter the project's models come from.
PYTHON: Final = f"{sys.version_info.major}.{sys.version_info.minor}"
REPORTS: Final = "reports"
#: Run even when an earlier check failed (so every report is written), not when keel is missing.
_AFTER_INSTALL: Final = "${{ !cancelled() && steps.install.outcome == 'success' }}"
_BRANCH: Final = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")


@dataclass(frozen=True, slots=True)
class WorkflowOptions:
    """What the workflow needs to know about the project."""

    model: str
    keel_version: str
    branch: str = "main"
    #: What `keel contract check` reads (the data source), or None without data.contract.
    contract_data: str | None = None
    #: The source is a SQL query: snapshot it first and check the snapshot.
    snapshot_first: bool = False
    #: Check freshness and train as of this time (for projects on historical data).
    as_of: str | None = None
    rows: int = 2_000

    def _time(self, flag: str) -> str:
        return f" {flag} {shlex.quote(self.as_of)}" if self.as_of else ""

    def check_commands(self) -> list[tuple[str, str, list[str]]]:
        """(job id, title, commands) of each check, in order."""
        checks = []
        if self.contract_data is not None:
            commands = ["keel data snapshot"] if self.snapshot_first else []
            commands.append(
                f"keel contract check {shlex.quote(self.contract_data)} "
                f"--junit {REPORTS}/contract.xml{self._time('--now')}"
            )
            checks.append(("contract", "Data contract", commands))
        checks.append(
            (
                "smoke-test",
                "Training smoke test (and the inference contract of the model it trains)",
                [f"keel smoke-test --rows {self.rows} --junit {REPORTS}/smoke.xml"],
            )
        )
        return checks

    def release_commands(self, reason: str) -> list[str]:
        ref = f"{self.model}@latest"
        promote = (
            f'keel promote {ref} --to production --reason "{reason}" || status=$?\n'
            'case "${status:-0}" in\n'
            "  0) ;;\n"
            '  8) echo "promotion requested: it waits for approval (keel requests)" ;;\n'
            '  4) echo "nothing to promote: production already holds this version" ;;\n'
            '  *) exit "$status" ;;\n'
            "esac"
        )
        return [
            f"keel train{self._time('--as-of')}",
            f"keel contract-test {ref} --junit {REPORTS}/inference.xml",
            promote,
        ]


def options_for(
    project: Workspace,
    *,
    keel_version: str,
    branch: str = "main",
    model: str | None = None,
    as_of: str | None = None,
    rows: int = 2_000,
) -> WorkflowOptions:
    """The options for `project`: its model name and data source, checked."""
    from keel.domain.model import check_model_name
    from keel.spec import SqlSource

    if not _BRANCH.match(branch) or ".." in branch:
        raise ConfigError(
            f"--branch: {branch!r} is not a branch name keel writes into a workflow "
            "(letters, digits, '.', '_', '-', '/')",
            problems=[("--branch", "not a plain branch name")],
        )
    name = model or project.spec.name
    try:
        check_model_name(name)
    except ConfigError as exc:
        where = "--model" if model else "name in keel.yaml"
        raise ConfigError(f"{where}: {exc.message}", problems=[(where, exc.message)]) from None
    data = project.spec.data
    contract_data = None
    snapshot_first = False
    if data is not None and data.contract:
        if isinstance(data.source, SqlSource):
            contract_data, snapshot_first = "latest", True
        else:
            contract_data = data.source
    return WorkflowOptions(
        model=name,
        keel_version=keel_version,
        branch=branch,
        contract_data=contract_data,
        snapshot_first=snapshot_first,
        as_of=as_of,
        rows=rows,
    )


def workflow_path(kind: Kind) -> Path:
    """Where the workflow goes, relative to the project folder."""
    return Path(".github/workflows/keel.yml") if kind == "github" else Path(".gitlab-ci.yml")


def _header(kind: Kind, options: WorkflowOptions, where: str) -> list[str]:
    return [
        f"# Written by `keel ci init {kind}` (keel {options.keel_version}). Edit it freely;",
        f"# `keel ci init {kind} --force` writes it again. See keel's docs/ci.md.",
        "#",
        "# Every change: the data contract and a training smoke test on a sample (ending with",
        "# the inference contract test of the model it trains), published as JUnit reports.",
        f"# Pushes to {options.branch}, once those pass: train and register, test the new",
        "# version's inference contract, and request its promotion to production (a promotion",
        "# waiting for approval succeeds: a release owner runs `keel approve`).",
        "#",
        "# Set KEEL_DB_URL and KEEL_ARTIFACTS, the shared metadata and artifact stores, as",
        f"# {where}.",
        "# The checks need neither: they run in throwaway stores.",
        "# The data source must be readable here: if it is not in the repository, fetch it in",
        "# a step before the checks.",
    ]


def _block(command: str, indent: int) -> list[str]:
    """`command` as a YAML scalar: plain when that reads back the same, single-quoted when
    one line needs quoting, else a literal block (`|`) indented by `indent`."""
    if "\n" in command:
        pad = " " * indent
        return ["|", *(f"{pad}{line}" for line in command.splitlines())]
    plain = (
        command == command.strip()
        and ": " not in command
        and " #" not in command
        and not command.endswith(":")
        and command[:1] not in set("-?:,[]{}#&*!|>'\"%@`")
    )
    return [command] if plain else ["'" + command.replace("'", "''") + "'"]


def _github(options: WorkflowOptions) -> str:
    install = (
        f'python -m pip install "keelml[sklearn]=={options.keel_version}"\n'
        "if [ -f requirements.txt ]; then python -m pip install -r requirements.txt; fi"
    )
    setup = [
        "      - uses: actions/checkout@v4",
        "      - uses: actions/setup-python@v5",
        "        with:",
        f'          python-version: "{PYTHON}"',
        "      - name: Install keel",
        "        id: install",
        "        run: " + "\n".join(_block(install, 10)),
    ]
    lines = [
        *_header("github", options, "repository secrets (Settings > Secrets and variables)"),
        "name: keel",
        "",
        "on:",
        "  push:",
        f"    branches: [{options.branch}]",
        "  pull_request:",
        "",
        "permissions:",
        "  contents: read",
        "",
        "concurrency:",
        "  group: keel-${{ github.ref }}",
        "  # Never cancel a release half-way; a newer push to a pull request replaces its checks.",
        "  cancel-in-progress: ${{ github.event_name == 'pull_request' }}",
        "",
        "jobs:",
        "  check:",
        "    name: Contract and smoke test",
        "    runs-on: ubuntu-latest",
        "    timeout-minutes: 30",
        "    steps:",
        *setup,
    ]
    for position, (_, title, commands) in enumerate(options.check_commands()):
        lines.append(f"      - name: {title}")
        if position:
            lines.append(f"        if: {_AFTER_INSTALL}")  # every report, even after a failure
        lines.append("        run: " + "\n".join(_block("\n".join(commands), 10)))
    lines += [
        *_github_reports("keel-reports"),
        "",
        "  release:",
        "    name: Train, register, request promotion",
        "    needs: check",
        f"    if: github.event_name == 'push' && github.ref == 'refs/heads/{options.branch}'",
        "    runs-on: ubuntu-latest",
        "    timeout-minutes: 120",
        "    env:",
        "      KEEL_DB_URL: ${{ secrets.KEEL_DB_URL }}",
        "      KEEL_ARTIFACTS: ${{ secrets.KEEL_ARTIFACTS }}",
        "      KEEL_USER: ci",
        "    steps:",
        *setup,
    ]
    titles = ["Train and register", "Inference contract test", "Request promotion to production"]
    reason = "CI: commit ${{ github.sha }}"
    for title, command in zip(titles, options.release_commands(reason), strict=True):
        lines.append(f"      - name: {title}")
        lines.append("        run: " + "\n".join(_block(command, 10)))
    lines += _github_reports("keel-release-reports")
    return "\n".join(lines) + "\n"


def _github_reports(artifact: str) -> list[str]:
    """The steps that publish a job's JUnit reports: a summary on the job page, and the
    files as the artifact `artifact`; they run even after a failed check."""
    return [
        "      - name: Test summary",
        f"        if: {_AFTER_INSTALL}",
        f'        run: keel ci summary {REPORTS} >> "$GITHUB_STEP_SUMMARY"',
        "      - name: Upload the JUnit reports",
        f"        if: {_AFTER_INSTALL}",
        "        uses: actions/upload-artifact@v4",
        "        with:",
        f"          name: {artifact}",
        f"          path: {REPORTS}/",
    ]


def _script(commands: list[str], indent: int = 4) -> list[str]:
    pad = " " * indent
    out = []
    for command in commands:
        block = _block(command, indent + 4)
        out.append(f"{pad}- {block[0]}")
        out.extend(block[1:])
    return out


def _gitlab(options: WorkflowOptions) -> str:
    lines = [
        *_header("gitlab", options, "masked, protected CI/CD variables (Settings > CI/CD)"),
        "workflow:",
        "  rules:  # merge request pipelines, or branch pipelines when no merge request is open",
        '    - if: $CI_PIPELINE_SOURCE == "merge_request_event"',
        "    - if: $CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS",
        "      when: never",
        "    - if: $CI_COMMIT_BRANCH",
        "",
        "stages: [test, release]",
        "",
        "default:",
        f"  image: python:{PYTHON}-slim",
        "",
        "variables:",
        '  PIP_CACHE_DIR: "$CI_PROJECT_DIR/.cache/pip"',
        "",
        ".keel:",
        "  cache:",
        "    key: keel-pip",
        "    paths: [.cache/pip]",
        "  before_script:",
        *_script(
            [
                f'python -m pip install "keelml[sklearn]=={options.keel_version}"',
                "if [ -f requirements.txt ]; then python -m pip install -r requirements.txt; fi",
            ]
        ),
        "",
    ]
    for job, _, commands in options.check_commands():
        report = f"{REPORTS}/{'contract' if job == 'contract' else 'smoke'}.xml"
        lines += [
            f"{job}:",
            "  extends: .keel",
            "  stage: test",
            "  script:",
            *_script(commands),
            "  artifacts:",
            "    when: always",
            f"    paths: [{REPORTS}/]",
            "    reports:",
            f"      junit: {report}",
            "",
        ]
    reason = "CI: pipeline $CI_PIPELINE_ID, commit $CI_COMMIT_SHORT_SHA"
    lines += [
        "release:",
        "  extends: .keel",
        "  stage: release",
        "  rules:",
        f'    - if: $CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == "{options.branch}"',
        "  variables:",
        "    KEEL_USER: ci  # KEEL_DB_URL and KEEL_ARTIFACTS come from the CI/CD variables",
        "  script:",
        *_script(options.release_commands(reason)),
        "  artifacts:",
        "    when: always",
        f"    paths: [{REPORTS}/]",
        "    reports:",
        f"      junit: {REPORTS}/inference.xml",
    ]
    return "\n".join(lines) + "\n"


def render(kind: Kind, options: WorkflowOptions) -> str:
    """The workflow file's text."""
    return _github(options) if kind == "github" else _gitlab(options)


def write_workflow(project_dir: Path, kind: Kind, text: str, *, force: bool = False) -> Path:
    """Write the workflow through a temporary file and a rename; Conflict (nothing written)
    when the file exists and `force` is not given."""
    path = project_dir / workflow_path(kind)
    if path.exists() and not force:
        raise Conflict(
            f"{path} already exists",
            hint=f"pass --force to replace it (`keel ci init {kind} --force`)",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        Path(temp).chmod(0o644)  # mkstemp makes it private; a workflow file is not a secret
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path
