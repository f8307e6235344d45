"""Releases as values: the evidence a promotion is decided on, each gate's result, the
decision, approval requests and the rules of deciding them, and an alias's history.

The policy that turns keel.yaml's gates and evidence into a `ReleaseDecision` is
`keel.release.policy.decide`; the approval rules (separation of duties, roles, expiry,
`check_decider`) and the rollback target (`rollback_target`) are decided here. Pure: no
storage, no I/O, and nothing of keel.yaml's schema.

Ownership: the release owner (`owners.release`) answers for every gate evaluation and
request. Each gate also names the stage that fixes what it finds (`GATE_STAGES`): a failed
contract goes to the data owner, a model that scores too low or breaks its schema to the
training owner; the policy's `with_owners` writes those names into the results, so the stored
evaluation and its audit event (which webhooks deliver) say whom to tell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from keel.errors import Conflict, PermissionDenied

__all__ = [
    "GATE_STAGES",
    "REQUEST_STATUSES",
    "AliasMove",
    "ContractEvidence",
    "Decision",
    "EvaluationEvidence",
    "GateResult",
    "InferenceEvidence",
    "Outcome",
    "ReleaseDecision",
    "ReleaseEvidence",
    "ReleaseRequest",
    "RequestStatus",
    "check_decider",
    "rollback_target",
]

Outcome = Literal["promoted", "pending", "refused"]
RequestStatus = Literal["pending", "approved", "rejected", "expired", "superseded", "refused"]
REQUEST_STATUSES: Final = ("pending", "approved", "rejected", "expired", "superseded", "refused")
Decision = Literal["approve", "reject"]

#: The stage (of keel.yaml's `owners:`) that answers for what each gate type checks.
GATE_STAGES: Final[dict[str, str]] = {
    "metric_threshold": "training",
    "beats_champion": "training",
    "inference_contract": "training",
    "contract_passed": "data",
}


@dataclass(frozen=True, slots=True)
class EvaluationEvidence:
    """Both models scored on one evaluation set: the candidate, and the champion if any."""

    data: Mapping[str, Any]  # which rows: dataset id, selection, row count
    candidate: Mapping[str, float]
    champion_version: int | None = None
    champion: Mapping[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": dict(self.data),
            "candidate": dict(self.candidate),
            "champion_version": self.champion_version,
            "champion": None if self.champion is None else dict(self.champion),
        }


@dataclass(frozen=True, slots=True)
class ContractEvidence:
    """Whether the candidate's training data passed its contract, from the run's record."""

    checked: bool
    ok: bool | None
    detail: str
    report: str | None = None  # digest of the stored contract report

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "ok": self.ok,
            "detail": self.detail,
            "report": self.report,
        }


@dataclass(frozen=True, slots=True)
class InferenceEvidence:
    """The candidate answering sample requests built from real rows, in its stored schema."""

    samples: int
    failures: Sequence[str] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "failures": list(self.failures)}


@dataclass(frozen=True, slots=True)
class ReleaseEvidence:
    """Everything the gates of one promotion are decided on."""

    model: str
    version: int
    alias: str
    holder: int | None  # the version holding `alias` now
    evaluation: EvaluationEvidence | None = None
    contract: ContractEvidence | None = None
    inference: InferenceEvidence | None = None


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate's verdict, its reason in words, the numbers it was decided on, and who
    answers for it (None in evaluations stored before owners were recorded)."""

    gate: str
    type: str
    passed: bool
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    owner: str | None = None

    @property
    def stage(self) -> str:
        """The stage that answers for this gate (`GATE_STAGES`); release for unknown types."""
        return GATE_STAGES.get(self.type, "release")

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "type": self.type,
            "passed": self.passed,
            "reason": self.reason,
            "evidence": dict(self.evidence),
            "stage": self.stage,
            "owner": self.owner,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> GateResult:
        owner = document.get("owner")
        return cls(
            gate=str(document["gate"]),
            type=str(document["type"]),
            passed=bool(document["passed"]),
            reason=str(document["reason"]),
            evidence=dict(document.get("evidence") or {}),
            owner=None if owner is None else str(owner),
        )


@dataclass(frozen=True, slots=True)
class ReleaseDecision:
    """What the policy says about one promotion."""

    outcome: Outcome
    gates: tuple[GateResult, ...]
    approvals_required: int
    roles: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]


@dataclass(frozen=True, slots=True)
class ReleaseRequest:
    """A promotion waiting for (or decided by) approvals."""

    id: str
    model: str
    version: int
    alias: str
    holder: int | None
    evaluation: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    reason: str | None
    required: int
    roles: tuple[str, ...]
    status: RequestStatus
    approvals: tuple[tuple[str, Decision, str | None, datetime], ...] = ()
    closed_at: datetime | None = None
    closed_by: str | None = None
    outcome: str | None = None
    #: The release owner it was put to (`owners.release`); None when nobody is named.
    owner: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def approved_by(self) -> list[str]:
        return [actor for actor, decision, _, _ in self.approvals if decision == "approve"]

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "alias": self.alias,
            "holder": self.holder,
            "evaluation": self.evaluation,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "reason": self.reason,
            "required": self.required,
            "roles": list(self.roles),
            "status": self.status,
            "approvals": [
                {"actor": a, "decision": d, "comment": c, "at": t.isoformat()}
                for a, d, c, t in self.approvals
            ],
            "closed_at": None if self.closed_at is None else self.closed_at.isoformat(),
            "closed_by": self.closed_by,
            "outcome": self.outcome,
            "owner": self.owner,
        }


def check_decider(
    request: ReleaseRequest,
    actor: str,
    actor_roles: Iterable[str],
    now: datetime,
) -> None:
    """Refuse a decision the rules do not allow: `PermissionDenied` or `Conflict`.

    The requester can never approve or reject their own request (separation of duties);
    nobody decides twice; with roles configured, the decider must hold one of them; a
    closed or expired request takes no more decisions.
    """
    if request.status != "pending":
        raise Conflict(
            f"request {request.id} is {request.status}, not pending: it takes no more decisions",
            hint="`keel requests list` shows the pending requests",
        )
    if request.expired(now):
        raise Conflict(
            f"request {request.id} expired at {request.expires_at.isoformat()}",
            hint=f"request it again: `keel promote {request.ref} --to {request.alias}`",
        )
    if actor == request.requested_by:
        raise PermissionDenied(
            f"{actor} requested {request.id} and cannot decide it: "
            "a release needs a second person (separation of duties)",
            hint="ask another approver to run `keel approve` (KEEL_USER names who acts)",
        )
    if any(previous == actor for previous, _, _, _ in request.approvals):
        raise Conflict(f"{actor} has already decided request {request.id}")
    held = set(actor_roles)
    if request.roles and not held.intersection(request.roles):
        needed = ", ".join(request.roles)
        have = ", ".join(sorted(held)) or "no roles"
        raise PermissionDenied(
            f"{actor} cannot decide request {request.id}: it needs one of the roles "
            f"{needed}, and {actor} has {have}",
            hint=f"an admin can grant one: `keel users add {actor} --role {request.roles[0]}`",
        )


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One entry of an alias's history."""

    seq: int
    version: int
    previous: int | None
    #: remove: the alias was taken off `version` (a canary that ended), leaving it empty.
    kind: Literal["move", "rollback", "remove"]


def rollback_target(history: Sequence[AliasMove]) -> int | None:
    """The version an alias goes back to: the holder before the current one.

    The history is replayed as a stack: a move pushes its version, a rollback pops back to
    the version it restored. Rolling back twice therefore walks further back (3 -> 2 -> 1)
    instead of bouncing between two versions, and a version promoted again after being
    rolled away from counts as a holder again. A removal empties the alias and starts its
    history afresh: a canary that was promoted or rolled back is never a target for the
    next canary's rollback. None when there is no earlier holder.
    """
    stack: list[int] = []
    for move in sorted(history, key=lambda m: m.seq):
        if move.kind == "remove":
            stack.clear()
            continue
        if move.kind == "move":
            if not stack or stack[-1] != move.version:
                stack.append(move.version)
            continue
        while stack and stack[-1] != move.version:
            stack.pop()
        if not stack:
            stack.append(move.version)
    return stack[-2] if len(stack) >= 2 else None
