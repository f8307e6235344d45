"""`project.retrain()`: one pass of the closed loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.verbs._actor import ActorLike, acting_name

if TYPE_CHECKING:
    from datetime import datetime

    from keel.retraining.service import RetrainOutcome
    from keel.workspace import Workspace

__all__ = ["retrain"]


def retrain(
    project: Workspace,
    *,
    model: str | None = None,
    if_triggered: bool = False,
    now: datetime | None = None,
    as_of: datetime | None = None,
    actor: ActorLike = None,
) -> RetrainOutcome:
    """Train a challenger, judge it against the champion on the newest labelled
    predictions, record the decision in the audit log, and release it as keel.yaml's
    retraining.promotion says (as `keel retrain`).

    With `if_triggered` (what schedulers run) it retrains only when a trigger of
    retraining.triggers fired, evaluated as of `now`. `as_of` checks the data contract's
    freshness as of that time. `outcome.decision` says what happened: `not-triggered`,
    `no-change`, `kept-champion`, `promoted`, `pending` (a release request waits for
    approval) or `refused`, among others.
    """
    from keel.retraining.service import retrain as run

    return run(
        project,
        model=model,
        if_triggered=if_triggered,
        now=now,
        as_of=as_of,
        actor=acting_name(project, actor),
    )
