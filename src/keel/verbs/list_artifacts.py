"""`project.list_artifacts()`: the objects the artifact store holds, and what keeps each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["ArtifactList", "list_artifacts"]


@dataclass(frozen=True)
class ArtifactList:
    """Recorded objects, oldest first: digest, size, media type, who stored it when, and
    its holders (what keeps it from garbage collection; none: `keel artifacts gc` may
    delete it)."""

    artifacts: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"artifacts": self.artifacts}


def list_artifacts(project: Workspace, *, limit: int | None = None) -> ArtifactList:
    """The objects recorded in the project, oldest first, at most `limit` (as `keel
    artifacts list`), each with its holders. A limit below 1 is a `ConfigError`."""
    from keel.errors import ConfigError

    if limit is not None and limit < 1:
        raise ConfigError(f"limit {limit} is below 1", problems=[("limit", "at least 1")])
    records = project.metadata.artifacts
    return ArtifactList(
        [
            {
                "digest": record.digest,
                "size": record.size,
                "media_type": record.media_type,
                "created_at": record.created_at,
                "created_by": record.created_by,
                "holders": records.holders(record.digest),
            }
            for record in records.list(limit=limit)
        ]
    )
