"""`project.deploy_render()`: a model version's images and manifests, written all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.deploy.render import RenderResult
    from keel.domain.deploy import Target
    from keel.workspace import Workspace

__all__ = ["deploy_render"]


def deploy_render(
    project: Workspace,
    target: Target,
    ref: str,
    output: Path | str,
    *,
    image: str | None = None,
    replicas: int = 2,
    force: bool = False,
) -> RenderResult:
    """Write `target`'s files (docker, kubernetes or kserve) for the version `ref` names into
    the folder `output`, all or nothing (as `keel deploy render`; see docs/deploy.md). The
    same input gives the same bytes. A malformed reference or unknown target is a
    `ConfigError`; a folder holding other files is refused unless `force`."""
    from keel.deploy.render import render
    from keel.domain.model import parse_model_ref

    parse_model_ref(ref)  # a malformed reference fails before anything is read
    return render(project, ref, target, Path(output), image=image, replicas=replicas, force=force)
