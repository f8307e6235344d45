"""Acting on the canary's verdict, through the release service (`keel.release.canary`):
promote it, roll it back, end it, or leave it watched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from keel.errors import Conflict, NotFound
from keel.retraining.canary.analysis import CanaryAnalysis, analyze_canary

if TYPE_CHECKING:
    from keel.domain.audit import AuditEvent
    from keel.domain.identity import Actor
    from keel.domain.release import GateResult, ReleaseRequest
    from keel.release.canary import CanaryRelease
    from keel.workspace import Workspace

__all__ = ["Action", "CanaryOutcome", "act_on_canary"]

#: What `act_on_canary` did.
Action = Literal[
    "none",  # no version holds canary
    "watch",  # not enough time or data yet: nothing changed
    "promoted",  # production moved to the canary's version; canary removed
    "requested",  # production needs approval: a release request was opened
    "pending",  # such a request is already open
    "refused",  # the release gates refuse it for production: canary removed
    "rolled_back",  # a criterion was breached: canary removed
    "cleared",  # the canary's version already holds production: canary removed
    "conflict",  # another checker changed the aliases first: nothing changed
]

_PRODUCTION: Final = "production"


@dataclass(frozen=True)
class CanaryOutcome:
    """What `act_on_canary` did, with the analysis it acted on."""

    action: Action
    model: str
    canary: int | None
    production: int | None
    analysis: CanaryAnalysis | None = None
    events: tuple[AuditEvent, ...] = ()
    request: ReleaseRequest | None = None
    evaluation: str | None = None
    gates: tuple[GateResult, ...] = ()
    note: str | None = None
    #: The release owner, answerable for a promotion (None: keel.yaml names nobody).
    owner: str | None = None
    #: Whom the gate evaluation concerns: the release owner, then the owners of failed gates.
    notify: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "action": self.action,
            "model": self.model,
            "canary": self.canary,
            "production": self.production,
            "verdict": None if self.analysis is None else self.analysis.verdict,
            "reasons": [] if self.analysis is None else list(self.analysis.reasons),
            "events": [{"seq": e.seq, "kind": e.kind} for e in self.events],
            "request": None if self.request is None else self.request.to_dict(),
            "evaluation": self.evaluation,
            "gates": [g.to_dict() for g in self.gates],
            "note": self.note,
            "owner": self.owner,
            "notify": list(self.notify),
            "analysis": None if self.analysis is None else self.analysis.to_dict(),
        }


def act_on_canary(
    project: Workspace,
    model: str,
    *,
    now: datetime | None = None,
    actor: Actor | str = "keel-canary",
) -> CanaryOutcome:
    """Analyse the canary and act on the verdict: promote it (through the release policy),
    roll it back, or leave it watched. Safe to run from several schedulers at once: each
    change is compare-and-set on the holders the analysis saw."""
    from keel.domain.identity import Actor

    try:
        analysis = analyze_canary(project, model, now=now)
    except NotFound:
        # (an unknown model raises NotFound here, naming the models there are)
        production = project.metadata.releases.holder(model, _PRODUCTION)
        return CanaryOutcome("none", model, None, production)
    who = Actor(actor) if isinstance(actor, str) else actor
    try:
        return _act(project, analysis, who)
    except Conflict as exc:
        return CanaryOutcome(
            "conflict",
            model,
            analysis.canary,
            analysis.production,
            analysis,
            note=f"{exc.message} (another check acted first)",
        )


def _act(project: Workspace, analysis: CanaryAnalysis, actor: Actor) -> CanaryOutcome:
    from keel.release.canary import clear_canary, promote_canary, roll_back_canary

    model, canary, production = analysis.model, analysis.canary, analysis.production
    if analysis.verdict == "watch":
        return CanaryOutcome("watch", model, canary, production, analysis)
    if analysis.verdict == "rollback":
        done = roll_back_canary(
            project,
            model,
            canary,
            actor=actor,
            reason=analysis.summary(),
            analysis=analysis.to_dict(),
        )
    elif production == canary:
        done = clear_canary(project, model, canary, actor=actor)
    else:
        done = promote_canary(
            project,
            model,
            canary,
            production=production,
            actor=actor,
            reason=analysis.summary(),
            analysis=analysis.to_dict(),
        )
    return CanaryOutcome(
        done.outcome,
        model,
        canary,
        production,
        analysis,
        done.events,
        done.request,
        done.evaluation,
        done.gates,
        _note(done),
        done.owner,
        done.notify,
    )


def _note(done: CanaryRelease) -> str | None:
    if done.request is None:
        return None
    if done.outcome == "pending":
        return f"waiting for approval of request {done.request.id} to move production"
    return (
        f"release.approvals covers production: request {done.request.id} needs "
        f"{done.request.required} approval(s); the canary keeps serving meanwhile"
    )
