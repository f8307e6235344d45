"""`project.reject()`: reject a release request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.verbs._actor import ActorLike, acting

if TYPE_CHECKING:
    from keel.release.service import DecisionResult
    from keel.workspace import Workspace

__all__ = ["reject"]


def reject(
    project: Workspace, request_id: str, *, actor: ActorLike = None, comment: str | None = None
) -> DecisionResult:
    """Reject a pending release request, never one's own; the alias stays where it is
    (as `keel reject`). `result.outcome` is `rejected`."""
    from keel.release.service import reject as run

    return run(project, request_id, actor=acting(project, actor), comment=comment)
