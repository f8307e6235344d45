"""`project.approve()`: approve a release request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.verbs._actor import ActorLike, acting

if TYPE_CHECKING:
    from keel.release.service import DecisionResult
    from keel.workspace import Workspace

__all__ = ["approve"]


def approve(
    project: Workspace, request_id: str, *, actor: ActorLike = None, comment: str | None = None
) -> DecisionResult:
    """Approve a pending release request, never one's own (as `keel approve`).

    `result.outcome` is `approved` (the last approval needed moved the alias), `recorded`
    (more approvals are needed) or `refused` (the alias changed holder since the request
    and the gates fail against the new one).
    """
    from keel.release.service import approve as run

    return run(project, request_id, actor=acting(project, actor), comment=comment)
