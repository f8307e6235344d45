"""`project.canary_check()`: judge the canary and act on the verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from keel.verbs._actor import ActorLike, acting

if TYPE_CHECKING:
    from datetime import datetime

    from keel.retraining.canary import CanaryOutcome
    from keel.workspace import Workspace

__all__ = ["CANARY_ACTOR", "canary_check"]

#: Who acts on a canary verdict unless told otherwise: the audit log then tells a scheduled
#: check's promotion or rollback apart from a person's.
CANARY_ACTOR: Final = "keel-canary"


def canary_check(
    project: Workspace,
    *,
    model: str | None = None,
    now: datetime | None = None,
    actor: ActorLike = None,
) -> CanaryOutcome:
    """Compare the version holding `canary` with production over the canary's period (ending
    `now`) and act as keel.yaml's retraining.canary says: promote it through the release
    policy, roll it back, or keep watching (as `keel canary check`). Safe to schedule, also
    from several machines at once.

    `model` defaults to the project's. `actor` None acts as `keel-canary`, as the command
    does. `outcome.action` says what was done (`none`, `watch`, `promoted`, `requested`,
    `pending`, `refused`, `rolled_back`, `cleared` or `conflict`).
    """
    from keel.monitoring.feedback import default_model
    from keel.retraining.canary import act_on_canary

    name = default_model(project, model)
    who = CANARY_ACTOR if actor is None else acting(project, actor)
    return act_on_canary(project, name, now=now, actor=who)
