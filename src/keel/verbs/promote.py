"""`project.promote()`: move an alias to a version through the release gates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.verbs._actor import ActorLike, acting

if TYPE_CHECKING:
    from keel.release.service import PromotionResult
    from keel.workspace import Workspace

__all__ = ["promote"]


def promote(
    project: Workspace,
    ref: str,
    alias: str,
    *,
    actor: ActorLike = None,
    reason: str | None = None,
    eval_data: str | None = None,
) -> PromotionResult:
    """Move `alias` to the version `ref` (MODEL@VERSION) names, if the release policy allows
    (as `keel promote REF --to ALIAS`).

    `result.outcome` is `promoted` (the alias moved), `pending` (a release request waits for
    approval: `result.request`) or `refused` (`result.gates` says which gates failed).
    `eval_data` scores both models on that dataset version instead of the holdout.
    """
    from keel.release.service import promote as run

    who = acting(project, actor)
    return run(project, ref, alias, actor=who, reason=reason, eval_data=eval_data)
