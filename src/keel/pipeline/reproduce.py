"""`keel reproduce MODEL@VERSION`: rebuild a model version's run from its lineage and compare.

The dataset comes from the store (verified by hash); the code is the working tree when its
fingerprints equal the run's, else the run's git commit exported from the repository, else the
rebuild is refused (it could not be the same code). The environment is compared package by
package and every difference listed. Metrics must match; package bytes are compared too, and
equal only for deterministic formats (skops files embed object ids, so sklearn packages differ
byte-wise even when the model is the same).
"""

from __future__ import annotations

import dataclasses
import io
import math
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import Conflict, NotFound

if TYPE_CHECKING:
    from keel.pipeline.train import Progress
    from keel.workspace import Workspace

__all__ = ["ReproduceReport", "reproduce"]


@dataclass(frozen=True, slots=True)
class ReproduceReport:
    model: str  # name@version
    original_run: str
    new_run: str
    code_source: str
    environment_differences: list[str]
    metrics: dict[str, tuple[float, float]]  # name -> (recorded, reproduced)
    tolerance: float
    package_identical: bool

    @property
    def metrics_match(self) -> bool:
        return all(
            math.isclose(a, b, rel_tol=self.tolerance, abs_tol=self.tolerance)
            for a, b in self.metrics.values()
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.metrics_match,
            "model": self.model,
            "original_run": self.original_run,
            "new_run": self.new_run,
            "code_source": self.code_source,
            "environment_differences": self.environment_differences,
            "metrics": {
                name: {"recorded": a, "reproduced": b} for name, (a, b) in self.metrics.items()
            },
            "metrics_match": self.metrics_match,
            "package_identical": self.package_identical,
        }


def reproduce(
    project: Workspace, ref: str, *, tolerance: float = 1e-9, progress: Progress | None = None
) -> ReproduceReport:
    """Rebuild the run behind `ref` and compare its metrics (and package) with the recorded ones."""
    from keel.code.environment import (
        capture_environment,
        diff_environments,
        recorded_environment,
    )
    from keel.pipeline.train import train

    metadata = project.metadata
    version = metadata.models.resolve(ref)
    run = metadata.runs.get(version.run_id)
    if run.dataset is None:
        raise Conflict(f"run {run.id} recorded no dataset version; it cannot be rebuilt")
    source, code_source = _code_for(project, run)
    differences: list[str] = []
    recorded = recorded_environment(project, run.id)
    if recorded is not None:
        differences = [str(d) for d in diff_environments(recorded, capture_environment())]
    as_of_text = metadata.runs.tags(run.id).get("keel.as_of")
    as_of = datetime.fromisoformat(as_of_text) if as_of_text else run.started_at
    try:
        result = train(
            source,
            force=True,
            as_of=as_of,
            progress=progress,
            dataset=run.dataset,
            register=False,
            purpose="reproduce",
        )
    finally:
        if source is not project:  # the commit exported to a temporary folder
            exported = source.settings.project_dir
            root = next(
                (p for p in (exported, *exported.parents) if p.name.startswith("keel-reproduce-")),
                None,
            )
            if root is not None:
                shutil.rmtree(root, ignore_errors=True)
    return ReproduceReport(
        model=version.ref,
        original_run=run.id,
        new_run=result.run_id,
        code_source=code_source,
        environment_differences=differences,
        metrics={
            name: (value, result.metrics.get(name, math.nan))
            for name, value in version.metrics.items()
        },
        tolerance=tolerance,
        package_identical=result.package == version.package,
    )


def _code_for(project: Workspace, run: Any) -> tuple[Workspace, str]:
    """The project whose code has the run's fingerprints: this one, or its git commit's."""
    if _fingerprints(project) == (run.feature_code_hash, run.training_code_hash):
        return project, "the working tree (its code fingerprints equal the run's)"
    if not run.git_commit:
        raise Conflict(
            f"the feature or training code changed since run {run.id}, and the run recorded "
            "no git commit to rebuild it from",
            hint="restore the code the run used, or train in a git repository so runs "
            "record their commit",
        )
    exported = _export_commit(project.settings.project_dir, run.git_commit)
    from keel.spec import load_spec
    from keel.workspace import Workspace as ProjectClass

    settings = dataclasses.replace(project.settings, project_dir=exported)
    candidate = ProjectClass(settings, load_spec(exported / "keel.yaml"))
    candidate.__dict__["metadata"] = project.metadata  # share the open stores
    candidate.__dict__["artifacts"] = project.artifacts
    if _fingerprints(candidate) != (run.feature_code_hash, run.training_code_hash):
        raise Conflict(
            f"the code at commit {run.git_commit[:12]} does not have run {run.id}'s "
            "fingerprints: the run had uncommitted changes",
            hint="commit before training, so that every run can be rebuilt",
        )
    return candidate, f"git commit {run.git_commit[:12]}"


def _fingerprints(project: Workspace) -> tuple[str | None, str | None]:
    from keel.code.entrypoints import entry_point_source

    spec, folder = project.spec, project.settings.project_dir
    if spec.features is None or spec.training is None:
        return None, None
    return (
        str(entry_point_source(spec.features.entry_point, folder).digest),
        str(entry_point_source(spec.training.entry_point, folder).digest),
    )


def _export_commit(project_dir: Path, commit: str) -> Path:
    """The project folder as it was at `commit`, exported to a temporary folder."""

    def git(*args: str) -> bytes:
        try:
            done = subprocess.run(
                ["git", "-C", str(project_dir), *args], capture_output=True, check=True, timeout=60
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise NotFound(
                f"cannot read commit {commit[:12]} from the repository at {project_dir}: {exc}",
                hint="fetch the commit (e.g. `git fetch --all`) and try again",
            ) from None
        return done.stdout

    root = Path(git("rev-parse", "--show-toplevel").decode().strip())
    prefix = project_dir.resolve().relative_to(root.resolve()).as_posix()
    archive = git("archive", "--format=tar", commit, "--", prefix if prefix != "." else ".")
    target = Path(tempfile.mkdtemp(prefix="keel-reproduce-"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / prefix if prefix != "." else target
