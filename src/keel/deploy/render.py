"""`keel deploy render`: a model version's container images or manifests, in one folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from keel.deploy.container import resource_name
from keel.deploy.docker import base_image, docker_files
from keel.deploy.folder import write_folder
from keel.deploy.kserve import kserve_files
from keel.deploy.kubernetes import kubernetes_files
from keel.deploy.source import DeploySource, load_source
from keel.domain.deploy import TARGETS, Target
from keel.errors import ConfigError
from keel.serial import dump

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["MARKER_KIND", "TARGETS", "RenderResult", "Target", "default_image", "render"]

#: Document tag of the marker file a render leaves in its folder.
MARKER_KIND: Final = "keel/deploy-render"

_Renderer = Callable[[DeploySource, str, int], dict[str, bytes]]
_RENDERERS: Final[dict[Target, _Renderer]] = {
    "docker": lambda source, _image, _replicas: docker_files(source),
    "kubernetes": kubernetes_files,
    "kserve": kserve_files,
}


@dataclass(frozen=True, slots=True)
class RenderResult:
    target: Target
    model: str  # name@version
    output: Path
    image: str
    replicas: int
    base_image: str | None  # docker only
    files: list[str]
    #: Files of the user's own in the folder an earlier render wrote, left as they were.
    kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


def default_image(source: DeploySource) -> str:
    """`<model>:v<version>`, the tag the docs build the serving image as."""
    return f"{resource_name(source.version.model)}:v{source.version.version}"


def render(
    project: Workspace,
    ref: str,
    target: Target,
    output: Path,
    *,
    image: str | None = None,
    replicas: int = 2,
    force: bool = False,
) -> RenderResult:
    """Write `target`'s files for the version `ref` names into `output`, all or nothing.

    The same version, options and project files give the same bytes: nothing rendered holds
    a time, a host name or an absolute path.
    """
    if target not in _RENDERERS:
        raise ConfigError(
            f"unknown deploy target {target!r}: expected one of {', '.join(TARGETS)}",
            problems=[("target", f"one of {', '.join(TARGETS)}")],
        )
    if replicas < 1:
        raise ConfigError(
            f"--replicas must be at least 1, got {replicas}",
            problems=[("replicas", "a whole number >= 1")],
        )
    source = load_source(project, ref, project_files=target == "docker")
    chosen = image or default_image(source)
    files = _RENDERERS[target](source, chosen, replicas)
    marker = {
        "kind": MARKER_KIND,
        "version": 1,
        "target": target,
        "model": source.version.ref,
        "environment_lock": str(source.lock.digest),
    }
    kept = write_folder(output, files, marker, force=force)
    return RenderResult(
        target=target,
        model=source.version.ref,
        output=output,
        image=chosen,
        replicas=replicas,
        base_image=base_image(source.lock) if target == "docker" else None,
        files=sorted(files),
        notes=list(source.notes),
        kept=kept,
    )
