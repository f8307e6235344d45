"""What a render starts from: a registered model version, the environment lock its run
recorded, and the project files its containers need (keel.yaml, the feature and training
code, the data contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from keel.code.environment import EnvironmentLock, recorded_environment
from keel.domain.model import ModelVersion
from keel.errors import NotFound
from keel.spec import SPEC_FILENAME

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["DeploySource", "load_source", "recorded_lock"]

#: The run artifact that holds the environment lock (written by training).


@dataclass(frozen=True, slots=True)
class DeploySource:
    """A model version with everything a render reads, read once from the stores."""

    version: ModelVersion
    lock: EnvironmentLock
    git_commit: str | None
    #: Project files by POSIX path relative to the project folder: keel.yaml first, then
    #: the feature and training code, then the data contract.
    project_files: dict[str, bytes]
    #: What a user should know about an image built from these files.
    notes: list[str] = field(default_factory=list)


def recorded_lock(project: Workspace, version: ModelVersion) -> EnvironmentLock:
    """The environment lock the version's run recorded; `NotFound` if it recorded none."""
    lock = recorded_environment(project, version.run_id)
    if lock is None:
        raise NotFound(
            f"{version.ref}'s run {version.run_id} recorded no environment lock",
            hint="train the model again with this keel version: runs record their environment",
        )
    return lock


def load_source(project: Workspace, ref: str, *, project_files: bool = True) -> DeploySource:
    """Resolve `ref` (`model@3`, `model@production`) and read what a render needs; the
    project files (and the notes about them) only when `project_files` (images need them,
    manifests do not)."""
    from keel.code.entrypoints import entry_point_source

    version = project.metadata.models.resolve(ref)
    run = project.metadata.runs.get(version.run_id)
    lock = recorded_lock(project, version)
    if not project_files:
        return DeploySource(version, lock, run.git_commit, {})
    folder = project.settings.project_dir
    spec = project.spec
    files: dict[str, bytes] = {SPEC_FILENAME: (folder / SPEC_FILENAME).read_bytes()}
    fingerprints: list[str | None] = [None, None]
    for index, section in enumerate((spec.features, spec.training)):
        if section is None:
            continue
        code = entry_point_source(section.entry_point, folder)
        fingerprints[index] = str(code.digest)
        for file in code.files:
            files[file.path] = (folder / file.path).read_bytes()
    notes: list[str] = []
    contract = spec.data.contract if spec.data is not None else None
    if contract is not None:
        relative = _inside(folder, contract)
        if relative is not None and (folder / relative).is_file():
            files[relative] = (folder / relative).read_bytes()
    if fingerprints != [run.feature_code_hash, run.training_code_hash]:
        restore = (
            f"check out commit {run.git_commit}" if run.git_commit else "restore the run's code"
        )
        notes.append(
            f"the working tree's feature or training code differs from run {run.id}'s, so the "
            f"training image would not rebuild {version.ref}: {restore} and render again"
        )
    if lock.system != "Linux":
        notes.append(
            f"{version.ref} was trained on {lock.system} {lock.machine}; the images are Linux, "
            "so packages built only for that system will not install"
        )
    return DeploySource(version, lock, run.git_commit, files, notes)


def _inside(folder: Path, path: str) -> str | None:
    """`path` relative to `folder` in POSIX form, or None when it lies outside."""
    candidate = Path(path)
    resolved = (candidate if candidate.is_absolute() else folder / candidate).resolve()
    try:
        return resolved.relative_to(folder.resolve()).as_posix()
    except ValueError:
        return None
