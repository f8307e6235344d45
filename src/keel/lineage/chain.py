"""The whole chain behind a model version: what `keel lineage MODEL@VERSION` prints.

model version -> run -> dataset version (source files and their digests) -> feature and training
code (the files and digests packaged with the model) -> git commit -> environment lock.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import NotFound

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["model_lineage"]


def model_lineage(project: Workspace, ref: str) -> dict[str, Any]:
    """Every link from the model version `ref` back to data, code and environment.

    Each link is read from the stores, never recomputed; a missing link (a run without a
    dataset, a dataset gone from the store) is reported as such, not guessed.
    """
    from keel.code.environment import EnvironmentLock

    metadata = project.metadata
    version = metadata.models.resolve(ref)
    run = metadata.runs.get(version.run_id)
    chain: dict[str, Any] = {
        "model": {
            **version.to_dict(),
            "aliases": [
                a.name
                for a in metadata.models.aliases(version.model)
                if a.version == version.version
            ],
        },
        "run": {
            **run.to_dict(),
            "params": metadata.runs.params(run.id),
            "metrics": {s.key: s.last for s in metadata.runs.metric_summaries(run.id)},
            "steps": [
                {
                    "step": s.step,
                    "outcome": s.outcome,
                    "output": None if s.output is None else str(s.output),
                }
                for s in metadata.runs.steps(run.id)
            ],
        },
        "dataset": None,
        "code": _packaged_code(project, version.package),
        "environment": None,
    }
    if run.dataset is not None:
        try:
            chain["dataset"] = metadata.datasets.get(run.dataset).to_dict()
        except NotFound:
            chain["dataset"] = {"id": str(run.dataset), "missing": True}
    stored = {a.name: a for a in metadata.runs.artifacts(run.id)}
    if "environment.json" in stored:
        lock = EnvironmentLock.from_json(
            project.artifacts.read_bytes(stored["environment.json"].digest)
        )
        chain["environment"] = {
            "digest": str(lock.digest),
            "python": f"{lock.python_implementation} {lock.python_version}",
            "platform": f"{lock.system} {lock.release} {lock.machine}",
            "cpu": f"{lock.cpu_model} x{lock.cpu_count}",
            "gpus": [str(gpu) for gpu in lock.gpus],
            "packages": len(lock.packages),
            "keel": lock.keel_version,
        }
    return chain


def _packaged_code(project: Workspace, package: Any) -> dict[str, Any]:
    """The code fingerprints recorded in the package's model.json (read, not loaded)."""
    import json

    with tempfile.TemporaryDirectory(prefix="keel-lineage-") as folder:
        path = Path(folder) / "model.tar"
        project.artifacts.get_file(package, path)
        with tarfile.open(path) as archive:
            member = next(
                (m for m in archive.getmembers() if m.name.rsplit("/", 1)[-1] == "model.json"),
                None,
            )
            if member is None:
                return {}
            handle = archive.extractfile(member)
            manifest = json.loads(handle.read()) if handle is not None else {}
    return {
        "flavor": manifest.get("flavor"),
        "features": manifest.get("features"),
        "python_function": manifest.get("python_function"),
    }
