"""`project.rollback()`: move an alias back to its previous holder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.verbs._actor import ActorLike, acting

if TYPE_CHECKING:
    from keel.release.service import RollbackResult
    from keel.workspace import Workspace

__all__ = ["rollback"]


def rollback(
    project: Workspace,
    model: str,
    *,
    reason: str,
    alias: str = "production",
    actor: ActorLike = None,
) -> RollbackResult:
    """Move `alias` of `model` back to the version that held it before, in one step, with
    `reason` in the audit log (as `keel rollback`). No gates and no approval: the previous
    holder was released before. Rolling back again walks further back."""
    from keel.release.service import rollback as run

    return run(project, model, alias=alias, actor=acting(project, actor), reason=reason)
