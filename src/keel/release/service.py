"""The release workflow: promote, approve, reject, rollback, and the end of a canary.

Every change to what an alias holds goes through these steps, whoever asks: a person at the
CLI, the HTTP API, the retraining loop, or the canary check (`keel.release.canary` acts on the
verdicts `keel.retraining.canary` reaches, with the same steps). So the release policy, its
approvals and their separation of duties, and the owners told are decided in one place.

Each function gathers its evidence outside any transaction (scoring models takes seconds),
then commits its change and audit events in one transaction that re-checks, under the
model-row lock, that the alias still has the holder the decision was made against. After
the commit, subscribers hear of the new events (in process and by webhook).

Owners are named where they must act: every gate evaluation records the release owner
(`owner`), the owner answerable for each gate, and whom it concerns (`notify`: the release
owner and the owners of failed gates), so the `gates.evaluated` event a webhook receives
says whom to tell; requests carry the release owner they wait on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keel.domain.audit import AuditEvent
from keel.domain.identity import Actor
from keel.domain.model import check_alias_name, check_model_name, parse_model_ref
from keel.domain.release import (
    GateResult,
    Outcome,
    ReleaseDecision,
    ReleaseRequest,
    check_decider,
    rollback_target,
)
from keel.errors import ConfigError, Conflict, NotFound
from keel.faults import pause_point
from keel.release.policy import decide, notify_list, with_owners
from keel.release.usable import require_usable

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from keel.domain.model import ModelVersion
    from keel.workspace import Workspace

__all__ = [
    "DecisionResult",
    "GateEvaluation",
    "PromotionResult",
    "RollbackResult",
    "actor_for",
    "approve",
    "check_declared_alias",
    "evaluate_release",
    "notifying",
    "pending_request",
    "promote",
    "reject",
    "request_approval",
    "rollback",
    "with_release_owner",
]

_log = logging.getLogger(__name__)

#: Longest reason or comment kept, so one field cannot bloat the audit log.
MAX_TEXT = 2_000


@dataclass(frozen=True)
class PromotionResult:
    """What `promote` did: moved the alias, opened a request, or refused."""

    outcome: Outcome
    model: str
    version: int
    alias: str
    holder: int | None
    gates: tuple[GateResult, ...]
    evaluation: str | None
    request: ReleaseRequest | None = None
    event: AuditEvent | None = None
    note: str | None = None
    #: The release owner, answerable for this promotion (None: keel.yaml names nobody).
    owner: str | None = None
    #: Whom the evaluation concerns: the release owner, then the owners of failed gates.
    notify: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.outcome != "refused",
            "outcome": self.outcome,
            "model": self.model,
            "version": self.version,
            "alias": self.alias,
            "previous": self.holder,
            "gates": [g.to_dict() for g in self.gates],
            "evaluation": self.evaluation,
            "request": None if self.request is None else self.request.to_dict(),
            "event": None if self.event is None else self.event.seq,
            "note": self.note,
            "owner": self.owner,
            "notify": list(self.notify),
        }


@dataclass(frozen=True)
class DecisionResult:
    """What an approval or rejection did to its request."""

    outcome: str  # approved (alias moved) | recorded (more approvals needed) | rejected | refused
    request: ReleaseRequest
    event: AuditEvent | None = None
    gates: tuple[GateResult, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.outcome != "refused",
            "outcome": self.outcome,
            "request": self.request.to_dict(),
            "event": None if self.event is None else self.event.seq,
            "gates": [g.to_dict() for g in self.gates],
        }


@dataclass(frozen=True)
class RollbackResult:
    model: str
    alias: str
    from_version: int
    to_version: int
    event: AuditEvent

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "model": self.model,
            "alias": self.alias,
            "from": self.from_version,
            "to": self.to_version,
            "event": self.event.seq,
            "reason": self.event.reason,
        }


def actor_for(project: Workspace, name: str | None = None) -> Actor:
    """The CLI's acting identity: `KEEL_USER` (or the OS user), with its roles if recorded."""
    user = name or project.settings.user
    return Actor(user, project.metadata.identities.roles(user), via="cli")


def with_release_owner(project: Workspace, request: ReleaseRequest) -> ReleaseRequest:
    """`request` naming its owner: the one recorded with it, else keel.yaml's release owner."""
    if request.owner is not None:
        return request
    return dataclasses.replace(request, owner=project.spec.owners.of("release"))


def _owned(
    project: Workspace, gates: tuple[GateResult, ...]
) -> tuple[tuple[GateResult, ...], tuple[str, ...]]:
    """The gates naming their owners, and whom the evaluation concerns."""
    owned = with_owners(gates, project.spec.owners)
    return owned, tuple(notify_list(owned, project.spec.owners))


def _text(value: str | None, field_name: str) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise ConfigError(
            f"{field_name} is {len(text):,} characters; the limit is {MAX_TEXT:,}",
            problems=[(field_name, f"must be at most {MAX_TEXT:,} characters")],
        )
    return text or None


def check_declared_alias(project: Workspace, alias: str, field_name: str = "alias") -> str:
    """`alias` if keel.yaml declares it (`release.aliases`), else `ConfigError` listing the
    declared ones: an alias no one declared is no one's policy, and a typo must not create one."""
    declared = project.spec.release.declared_aliases
    if alias in declared:
        return alias
    close = difflib.get_close_matches(alias, declared, n=1, cutoff=0.5)
    raise ConfigError(
        f"alias {alias!r} is not declared in keel.yaml: release.aliases declares "
        f"{', '.join(declared)}" + (f"; did you mean {close[0]!r}?" if close else ""),
        problems=[(field_name, f"must be one of {', '.join(declared)}")],
        hint="to use a new alias, add it to release.aliases in keel.yaml (and to the "
        "approval policy if it needs approvals)",
    )


def _notify(project: Workspace, after: int) -> None:
    """Tell subscribers about every event committed since `after` (best effort)."""
    try:
        from keel.events import notify

        notify(project, project.metadata.audit.events(after=after))
    except Exception:  # noqa: BLE001 - the change is committed; delivery is retried later
        _log.warning("could not notify subscribers of new audit events", exc_info=True)


@contextlib.contextmanager
def notifying(project: Workspace) -> Iterator[None]:
    """Subscribers hear of what the block committed, also when a later step of it failed
    (a gate evaluation stays recorded when the move after it conflicts)."""
    start, _ = project.metadata.audit.head()
    try:
        yield
    finally:
        _notify(project, start)


@dataclass(frozen=True)
class GateEvaluation:
    """A recorded gate evaluation: the policy's decision and whom it concerns."""

    id: str
    decision: ReleaseDecision
    gates: tuple[GateResult, ...]
    owner: str | None
    notify: tuple[str, ...]


def evaluate_release(
    project: Workspace,
    version: ModelVersion,
    alias: str,
    holder: int | None,
    *,
    actor: Actor,
    evidence: Mapping[str, object],
    eval_data: str | None = None,
) -> GateEvaluation:
    """Gather the evidence for moving `alias` from `holder` to `version`, decide by the
    release policy, and record the evaluation (`gates.evaluated`, with `evidence`, the
    scores and the owners) before anything moves."""
    from keel.release.evidence import gather_evidence

    release = project.spec.release
    gathered = gather_evidence(project, version, alias, holder, release.gates, eval_data=eval_data)
    decision = decide(release, gathered, project.spec.metrics)
    extra: dict[str, object] = {"outcome": decision.outcome, **evidence}
    if gathered.evaluation is not None:
        extra["scores"] = gathered.evaluation.to_dict()
    owner = project.spec.owners.of("release")
    gates, notify = _owned(project, decision.gates)
    extra.update(owner=owner, notify=list(notify))
    evaluation = project.metadata.releases.record_evaluation(
        version.model,
        version.version,
        alias,
        holder=holder,
        results=gates,
        actor=actor.name,
        extra=extra,
    )
    return GateEvaluation(evaluation, decision, gates, owner, notify)


def request_approval(
    project: Workspace,
    version: ModelVersion,
    alias: str,
    holder: int | None,
    evaluation: GateEvaluation,
    *,
    actor: Actor,
    reason: str | None,
) -> ReleaseRequest:
    """Open the request the policy asks for, put to the release owner."""
    request = project.metadata.releases.open_request(
        version.model,
        version.version,
        alias,
        holder=holder,
        evaluation_id=evaluation.id,
        actor=actor.name,
        reason=reason,
        ttl=project.spec.release.request_ttl,
        required=evaluation.decision.approvals_required,
        roles=evaluation.decision.roles,
        evidence={"owner": evaluation.owner, "notify": list(evaluation.notify)},
    )
    return dataclasses.replace(request, owner=evaluation.owner)


def pending_request(
    project: Workspace, model: str, version: int, alias: str
) -> ReleaseRequest | None:
    """The open, unexpired request to move `alias` to `version`, naming its owner: asking
    again would only collect the same approvals twice."""
    now = datetime.now(UTC)
    for pending in project.metadata.releases.requests(status="pending", model=model):
        if pending.version == version and pending.alias == alias and not pending.expired(now):
            return with_release_owner(project, pending)
    return None


def promote(
    project: Workspace,
    ref: str,
    alias: str,
    *,
    actor: Actor,
    reason: str | None = None,
    eval_data: str | None = None,
) -> PromotionResult:
    """Move `alias` to the version `ref` names, if the release policy allows.

    Gates are evaluated against the alias's current holder and stored with their evidence.
    The alias moves at once when no approval is required, else a request is opened. If the
    alias moves while the gates are evaluated, `Conflict` and nothing changes.
    """
    check_alias_name(alias)
    check_declared_alias(project, alias)
    reason = _text(reason, "reason")
    if parse_model_ref(ref).kind == "model":
        raise ConfigError(
            f"{ref!r} names no version: promote {ref}@VERSION, {ref}@ALIAS or {ref}@latest "
            f"(e.g. {ref}@3, {ref}@candidate)",
            problems=[("MODEL@VERSION", "must name a version, an alias or latest after '@'")],
            hint=f"`keel models show {ref}` lists its versions and aliases",
        )
    metadata = project.metadata
    version = metadata.models.resolve(ref)
    require_usable(project, version, to=f"be promoted to {alias}")
    holder = metadata.releases.holder(version.model, alias)
    if holder == version.version:
        raise Conflict(
            f"{version.model}@{alias} already points at v{version.version}",
            hint=f"`keel models show {version.model}` lists its aliases",
        )
    pending = pending_request(project, version.model, version.version, alias)
    if pending is not None:
        return PromotionResult(
            "pending",
            version.model,
            version.version,
            alias,
            holder,
            tuple(metadata.releases.evaluation(pending.evaluation)),
            pending.evaluation,
            request=pending,
            note=f"already requested by {pending.requested_by}; waiting for approval",
            owner=pending.owner,
        )
    with notifying(project):
        evaluation = evaluate_release(
            project,
            version,
            alias,
            holder,
            actor=actor,
            evidence={"reason": reason},
            eval_data=eval_data,
        )
        pause_point("promote.evaluated")
        outcome = evaluation.decision.outcome
        request: ReleaseRequest | None = None
        event: AuditEvent | None = None
        if outcome == "pending":
            request = request_approval(
                project, version, alias, holder, evaluation, actor=actor, reason=reason
            )
        elif outcome == "promoted":
            event = metadata.releases.move_alias(
                version.model,
                alias,
                version.version,
                expected_holder=holder,
                actor=actor.name,
                reason=reason,
                evidence={"evaluation": evaluation.id},
            )
    return PromotionResult(
        outcome,
        version.model,
        version.version,
        alias,
        holder,
        evaluation.gates,
        evaluation.id,
        request=request,
        event=event,
        owner=evaluation.owner,
        notify=evaluation.notify,
    )


def _open_request(project: Workspace, request_id: str) -> ReleaseRequest:
    """The request, closed as expired first if its time ran out while pending."""
    releases = project.metadata.releases
    request = releases.request(request_id)
    if request.status == "pending" and request.expired(datetime.now(UTC)):
        start, _ = project.metadata.audit.head()
        with contextlib.suppress(Conflict):  # someone else closed it in between
            releases.close_request(
                request.id,
                status="expired",
                actor="keel",
                outcome=f"expired at {request.expires_at.isoformat()} without a decision",
            )
        _notify(project, start)
        request = releases.request(request.id)
    return request


def approve(
    project: Workspace, request_id: str, *, actor: Actor, comment: str | None = None
) -> DecisionResult:
    """Approve a pending request; the approval that completes the count moves the alias.

    The requester can never approve their own request. If the alias changed holder since
    the request, the gates are evaluated again against the new holder first; if they fail
    now, the request is closed as refused and the alias stays.
    """
    from keel.release.evidence import gather_evidence

    comment = _text(comment, "comment")
    metadata = project.metadata
    request = _open_request(project, request_id)
    now = datetime.now(UTC)
    check_decider(request, actor.name, actor.roles, now)  # early, friendly; re-checked in the move
    start, _ = metadata.audit.head()
    expected = request.holder
    evaluation: str | None = None
    gates: tuple[GateResult, ...] = ()
    if len(request.approved_by) + 1 >= request.required:
        # Checked again at the approval that moves the alias: the request may predate this.
        require_usable(
            project,
            metadata.models.get(request.model, request.version),
            to=f"be approved for {request.alias}",
        )
        current = metadata.releases.holder(request.model, request.alias)
        if current != request.holder:
            version = metadata.models.get(request.model, request.version)
            evidence = gather_evidence(
                project, version, request.alias, current, project.spec.release.gates
            )
            decision = decide(project.spec.release, evidence, project.spec.metrics)
            extra: dict[str, object] = {"revalidation_of": request.id}
            if evidence.evaluation is not None:
                extra["scores"] = evidence.evaluation.to_dict()
            gates, notify = _owned(project, decision.gates)
            extra.update(owner=project.spec.owners.of("release"), notify=list(notify))
            evaluation = metadata.releases.record_evaluation(
                request.model,
                request.version,
                request.alias,
                holder=current,
                results=gates,
                actor=actor.name,
                extra=extra,
            )
            if not decision.passed:
                failed = "; ".join(f"{g.gate}: {g.reason}" for g in decision.failed)
                closed = metadata.releases.close_request(
                    request.id,
                    status="refused",
                    actor=actor.name,
                    outcome=f"{request.alias} moved from v{request.holder} to v{current} since "
                    f"the request, and the gates fail against it: {failed}",
                    evidence={"evaluation": evaluation, "holder": current},
                )
                _notify(project, start)
                return DecisionResult("refused", with_release_owner(project, closed), gates=gates)
            expected = current
    pause_point("approve.deciding")
    updated, moved = metadata.releases.decide(
        request.id,
        actor=actor,
        decision="approve",
        comment=comment,
        expected_holder=expected,
        evaluation_id=evaluation,
    )
    pause_point("approve.decided")
    _notify(project, start)
    return DecisionResult(
        "approved" if moved else "recorded", with_release_owner(project, updated), moved, gates
    )


def reject(
    project: Workspace, request_id: str, *, actor: Actor, comment: str | None = None
) -> DecisionResult:
    """Reject a pending request; it closes, and the alias stays where it is."""
    comment = _text(comment, "comment")
    request = _open_request(project, request_id)
    check_decider(request, actor.name, actor.roles, datetime.now(UTC))
    start, _ = project.metadata.audit.head()
    updated, _moved = project.metadata.releases.decide(
        request.id,
        actor=actor,
        decision="reject",
        comment=comment,
        expected_holder=request.holder,
    )
    _notify(project, start)
    return DecisionResult("rejected", with_release_owner(project, updated))


def rollback(
    project: Workspace, model: str, *, alias: str = "production", actor: Actor, reason: str
) -> RollbackResult:
    """Move `alias` back to its previous holder, in one step, recorded with the reason."""
    check_model_name(model)
    check_alias_name(alias)
    check_declared_alias(project, alias)
    text = _text(reason, "reason")
    if text is None:
        raise ConfigError(
            "a rollback needs a reason (--reason TEXT): it goes into the audit log",
            problems=[("reason", "must be non-empty")],
        )
    releases = project.metadata.releases
    try:
        target = rollback_target(releases.history(model, alias))
    except NotFound:
        target = None  # the rollback below says what is missing
    if target is not None:
        require_usable(
            project, project.metadata.models.get(model, target), to=f"be rolled back to as {alias}"
        )
    start, _ = project.metadata.audit.head()
    event = releases.rollback(model, alias, actor=actor.name, reason=text)
    _notify(project, start)
    evidence = event.evidence
    return RollbackResult(model, alias, int(evidence["from"]), int(evidence["to"]), event)
