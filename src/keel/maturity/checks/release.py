"""Release control: gates, approvals and the audit trail behind each production version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from keel.maturity.checks.production import PRODUCTION, _item, _per_version, _Production
from keel.maturity.model import Item, Status

if TYPE_CHECKING:
    from keel.domain.audit import AuditEvent
    from keel.workspace import Workspace

__all__: list[str] = []


_SCORING_GATES: Final = frozenset({"metric_threshold", "beats_champion"})


def _putting_move(events: Sequence[AuditEvent], version: int) -> AuditEvent | None:
    """The move that released `version` onto production: the newest one to it, looking
    past rollbacks (a rollback returns to a version that was released before)."""
    for event in reversed(events):
        if event.alias != PRODUCTION or event.evidence.get("to") != version:
            continue
        if event.kind == "alias.moved":
            return event
    return None


def _release(project: Workspace, production: Sequence[_Production]) -> list[Item]:
    from keel.errors import NotFound

    release = project.spec.release
    metric = project.spec.primary_metric
    metric_name = metric.name if metric is not None else "<metric>"
    guarding = [g for g in release.gates if g.applies_to(PRODUCTION)]
    scoring = [g for g in guarding if g.type in _SCORING_GATES]
    gates_status: Status = "pass" if scoring else "partial" if guarding else "fail"
    kinds = ", ".join(g.type for g in guarding) or "none"
    gates = _item(
        "release",
        "release.gates",
        "release gates guard production",
        gates_status,
        f"{len(guarding)} gate(s) guard production: {kinds}"
        + ("" if scoring or not guarding else " (none scores the model)"),
        f"keel.yaml: release.gates += {{type: beats_champion, metric: {metric_name}}}",
    )
    approvals = release.approvals
    approved = approvals.required >= 1 and PRODUCTION in approvals.aliases
    roles = f", roles {', '.join(approvals.roles)}" if approvals.roles else ""
    approvals_item = _item(
        "release",
        "release.approvals",
        "moves to production need an approval",
        "pass" if approved else "fail",
        f"{approvals.required} approval(s) for {', '.join(approvals.aliases) or 'no alias'}"
        + roles,
        "keel.yaml: release.approvals: {required: 1, aliases: [production]}",
    )

    def used(p: _Production) -> tuple[Status, str]:
        events = project.metadata.audit.events(
            model=p.version.model, kinds=["alias.moved", "release.approved"]
        )
        move = _putting_move(events, p.version.version)
        if move is None:
            return "fail", f"{p.ref}: no recorded move put it on production"
        evidence = move.evidence
        evaluated = False
        gates_text = "no gate evaluation"
        evaluation = evidence.get("evaluation")
        if evaluation:
            try:
                results = project.metadata.releases.evaluation(str(evaluation))
            except NotFound:
                results = []
            evaluated = bool(results) and all(r.passed for r in results)
            if results:
                gates_text = f"{sum(r.passed for r in results)}/{len(results)} gates passed"
            else:
                gates_text = "an evaluation with no gates"
        approvers = list(evidence.get("approved_by") or [])
        if not approvers and "canary_event" in evidence:
            approvers = [
                e.actor
                for e in events
                if e.kind == "release.approved"
                and e.version == p.version.version
                and e.alias == "canary"
                and e.seq < move.seq
            ]
        approval_text = f"approved by {', '.join(approvers)}" if approvers else "no approval"
        status: Status = (
            "pass" if evaluated and approvers else "partial" if evaluated or approvers else "fail"
        )
        return status, f"{p.ref}: event {move.seq} by {move.actor}, {gates_text}, {approval_text}"

    status, evidence = _per_version(production, used)
    used_item = _item(
        "release",
        "release.used",
        "today's production versions passed gates and an approval",
        status,
        evidence,
        "keel promote MODEL@VERSION --to production, then keel approve REQUEST_ID "
        "(as another person)",
    )
    return [gates, approvals_item, used_item]
