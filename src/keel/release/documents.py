"""The documents of registered models, as `keel models list|show --json` prints them and
`GET /api/v1/models[/{name}[/versions/{version}]]` answers: built here once, so the command
line and the HTTP API cannot tell a model differently.

Each version carries its `status` (`keel.release.usable.status`): whether promotion, approval,
rollback and serving will take it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.release.usable import status

if TYPE_CHECKING:
    from keel.domain.model import ModelVersion
    from keel.workspace import Workspace

__all__ = ["model_document", "models_document", "version_document"]


def models_document(project: Workspace) -> list[dict[str, Any]]:
    """Every registered model with its newest version's status as `latest_status`."""
    registry = project.metadata.models
    return [
        {
            **found.to_dict(),
            "latest_status": status(project, registry.get(found.name, found.latest_version)),
        }
        for found in registry.list_models()
    ]


def model_document(project: Workspace, name: str) -> dict[str, Any]:
    """A model: its aliases (`{alias: version}`) and every version with its run, package,
    metrics, the aliases it holds and its status."""
    registry = project.metadata.models
    versions = registry.versions(name)
    aliases = registry.aliases(name)
    held: dict[int, list[str]] = {}
    for alias in aliases:
        held.setdefault(alias.version, []).append(alias.name)
    return {
        "name": name,
        "aliases": {a.name: a.version for a in aliases},
        "versions": [
            {
                "version": v.version,
                "run_id": v.run_id,
                "package": str(v.package),
                "flavor": v.flavor,
                "metrics": v.metrics,
                "aliases": held.get(v.version, []),
                "created_at": v.created_at.isoformat(),
                "created_by": v.created_by,
                "status": status(project, v),
            }
            for v in versions
        ],
    }


def version_document(project: Workspace, version: ModelVersion) -> dict[str, Any]:
    """One version in full (inference contract, signature, ...), the aliases it holds and its
    status."""
    aliases = project.metadata.models.aliases(version.model)
    held = [a.name for a in aliases if a.version == version.version]
    return {**version.to_dict(), "aliases": held, "status": status(project, version)}
