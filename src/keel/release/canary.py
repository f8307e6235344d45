"""The end of a canary, as a release: production moved, a request opened, or the canary removed.

The canary check (`keel.retraining.canary`) reads the metrics and gives a verdict; these act
on it with the release service's steps (`keel.release.service`): the same gates, approvals,
owners and notifications as `keel promote`. Every change is compare-and-set on the holders
the analysis saw, so a second checker acting at the same time gets `Conflict` and changes
nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from keel.domain.audit import AuditEvent
from keel.domain.identity import Actor
from keel.domain.release import GateResult, ReleaseRequest
from keel.errors import Conflict
from keel.release.service import (
    GateEvaluation,
    evaluate_release,
    notifying,
    pending_request,
    request_approval,
)

if TYPE_CHECKING:
    from keel.domain.model import ModelVersion
    from keel.workspace import Workspace

__all__ = ["CanaryRelease", "clear_canary", "promote_canary", "roll_back_canary"]

#: Longest reason kept on a canary's end (its analysis carries the details).
_REASON: Final = 1_000
_CANARY: Final = "canary"
_PRODUCTION: Final = "production"


@dataclass(frozen=True)
class CanaryRelease:
    """What ending a canary did to the aliases."""

    outcome: Literal[
        "promoted",  # production moved to the canary's version; canary removed
        "requested",  # production needs approval: a release request was opened
        "pending",  # such a request is already open
        "refused",  # the release gates refuse the version for production: canary removed
        "rolled_back",  # canary removed on the analysis's verdict
        "cleared",  # the version already held production: canary removed
    ]
    model: str
    version: int
    events: tuple[AuditEvent, ...] = ()
    request: ReleaseRequest | None = None
    evaluation: str | None = None
    gates: tuple[GateResult, ...] = ()
    #: The release owner, answerable for a promotion (None: keel.yaml names nobody).
    owner: str | None = None
    #: Whom the gate evaluation concerns: the release owner, then the owners of failed gates.
    notify: tuple[str, ...] = ()


def promote_canary(
    project: Workspace,
    model: str,
    version: int,
    *,
    production: int | None,
    actor: Actor,
    reason: str,
    analysis: Mapping[str, object],
) -> CanaryRelease:
    """Move `production` from `production` to `version`, which holds `canary` and passed its
    analysis (`analysis`, the evidence; `reason`, its summary), as the release policy says.

    The gates guarding production are evaluated and recorded with the analysis. If they
    refuse, the canary is removed as in a rollback. If production needs approval, a request
    is opened (once) and the canary keeps serving; approvals given to put `version` on
    canary count for this rollout when the policy required them for canary too. Otherwise
    `canary.promoted`, production moved and canary removed, in one transaction.
    """
    pending = pending_request(project, model, version, _PRODUCTION)
    if pending is not None:
        return CanaryRelease(
            "pending",
            model,
            version,
            request=pending,
            evaluation=pending.evaluation,
            owner=pending.owner,
        )
    releases = project.metadata.releases
    with notifying(project):
        candidate = project.metadata.models.get(model, version)
        evaluation = evaluate_release(
            project,
            candidate,
            _PRODUCTION,
            production,
            actor=actor,
            evidence={"canary": dict(analysis)},
        )
        decision = evaluation.decision
        if decision.outcome == "refused":
            failed = "; ".join(f"{g.gate}: {g.reason}" for g in decision.failed)
            events = releases.roll_back_canary(
                model,
                version,
                actor=actor.name,
                reason=f"canary v{version} passed its analysis, but the release gates refuse "
                f"it for production: {failed}"[:_REASON],
                evidence={**analysis, "evaluation": evaluation.id, "gates_failed": failed},
            )
            return _canary_release("refused", candidate, evaluation, events=events)
        if decision.outcome == "pending":
            approved = _approved_onto_canary(project, model, version)
            if approved is None:
                request = request_approval(
                    project,
                    candidate,
                    _PRODUCTION,
                    production,
                    evaluation,
                    actor=actor,
                    reason=reason,
                )
                return _canary_release("requested", candidate, evaluation, request=request)
            # The policy's approvals were given for this rollout: to put this version on
            # canary, to be promoted if it passes. Asking again would only add a rubber stamp.
            approvers = sorted({a[0] for a in approved.approvals if a[1] == "approve"})
            reason = (
                f"{reason}; approved for this rollout on request {approved.id} "
                f"({', '.join(approvers)})"
            )
        events = releases.promote_canary(
            model,
            version,
            expected_production=production,
            actor=actor.name,
            reason=reason,
            evidence=analysis,
            evaluation=evaluation.id,
        )
        return _canary_release("promoted", candidate, evaluation, events=events)


def roll_back_canary(
    project: Workspace,
    model: str,
    version: int,
    *,
    actor: Actor,
    reason: str,
    analysis: Mapping[str, object],
) -> CanaryRelease:
    """Remove `canary` from `version` on the evidence of its analysis, so production answers
    every request, and refuse open requests to put `version` on production."""
    releases = project.metadata.releases
    with notifying(project):
        events = releases.roll_back_canary(
            model, version, actor=actor.name, reason=reason, evidence=analysis
        )
        for pending in releases.requests(status="pending", model=model):
            if pending.version != version or pending.alias != _PRODUCTION:
                continue
            with contextlib.suppress(Conflict):  # closed by someone else meanwhile
                releases.close_request(
                    pending.id,
                    status="refused",
                    actor=actor.name,
                    outcome=f"the canary was rolled back: {reason}"[:_REASON],
                )
    return CanaryRelease("rolled_back", model, version, tuple(events))


def clear_canary(project: Workspace, model: str, version: int, *, actor: Actor) -> CanaryRelease:
    """Remove `canary` from `version`, which holds production too: the canary is over."""
    with notifying(project):
        event = project.metadata.releases.remove_alias(
            model,
            _CANARY,
            expected_holder=version,
            actor=actor.name,
            reason=f"v{version} holds production: the canary is over",
            evidence={"production": version},
        )
    return CanaryRelease("cleared", model, version, (event,))


def _canary_release(
    outcome: Literal["promoted", "requested", "refused"],
    version: ModelVersion,
    evaluation: GateEvaluation,
    *,
    events: Iterable[AuditEvent] = (),
    request: ReleaseRequest | None = None,
) -> CanaryRelease:
    return CanaryRelease(
        outcome,
        version.model,
        version.version,
        tuple(events),
        request,
        evaluation.id,
        evaluation.gates,
        evaluation.owner,
        evaluation.notify,
    )


def _approved_onto_canary(project: Workspace, model: str, version: int) -> ReleaseRequest | None:
    """The approved request that put `version` on canary, when the release policy required
    approval for canary too (approvals then cover the rollout: canary, then production)."""
    if _CANARY not in (project.spec.release.approvals.aliases or []):
        return None
    for request in project.metadata.releases.requests(status="approved", model=model):
        if request.version == version and request.alias == _CANARY:
            return request
    return None
