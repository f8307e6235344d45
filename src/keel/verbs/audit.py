"""`project.audit()` and `project.audit_verify()`: read the audit log, and check that it holds."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.audit.checkpoints import CheckpointCheck
    from keel.domain.audit import AuditEvent, ChainReport
    from keel.workspace import Workspace

__all__ = ["AuditEvents", "AuditVerification", "audit", "audit_verify"]


@dataclass(frozen=True)
class AuditEvents:
    """Events of the audit log, oldest first."""

    events: list[AuditEvent]

    def to_dict(self) -> dict[str, Any]:
        return {"events": [event.to_dict() for event in self.events]}


@dataclass(frozen=True)
class AuditVerification:
    """The hash chain recomputed (`chain`) and its newest signed checkpoint checked
    (`checkpoints`; None with `note` saying why when they could not be checked)."""

    chain: ChainReport
    checkpoints: CheckpointCheck | None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.chain.ok

    def to_dict(self) -> dict[str, Any]:
        checkpoints = (
            {"checked": None, "written": None, "note": self.note}
            if self.checkpoints is None
            else self.checkpoints.to_dict()
        )
        return {**self.chain.to_dict(), "checkpoints": checkpoints}


def audit(
    project: Workspace,
    *,
    model: str | None = None,
    kinds: Sequence[str] | None = None,
    after: int = 0,
    limit: int | None = None,
) -> AuditEvents:
    """The audit log's events after seq `after` (as `keel audit-log`): every registration,
    gate evaluation, request, decision and alias move, of `model` and of the `kinds` given
    if any. With `limit`, the newest `limit` of them. Oldest first either way."""
    events = project.metadata.audit.events(
        model=model,
        kinds=list(kinds) if kinds else None,
        after=after,
        limit=limit,
        newest_first=limit is not None,
    )
    if limit is not None:
        events.reverse()
    return AuditEvents(events)


def audit_verify(
    project: Workspace,
    *,
    expect: Sequence[tuple[int, str]] = (),
    checkpoint: bool = True,
    require_key: bool = True,
) -> AuditVerification:
    """Recompute the audit log's hash chain and check it against the newest signed
    checkpoint (as `keel audit-log verify`). `result.ok` is false at the first event that
    was edited, deleted or reordered, or at a checkpoint a rewritten or shortened log
    contradicts, or when an event of `expect` (pairs of seq and hash recorded earlier
    outside the database) hashes otherwise.

    With `checkpoint`, a chain that holds is checkpointed. Without `require_key`, a
    project that cannot read checkpoints (no public key) gets the chain checked alone, the
    reason in `result.note`, instead of a `ConfigError`.
    """
    from keel.domain.audit import ChainBreak
    from keel.errors import ConfigError

    log = project.metadata.audit
    report = log.verify()
    try:
        report, checkpoints = project.audit_checkpoints.verify(report, write=checkpoint)
    except ConfigError as exc:
        if require_key:
            raise
        return AuditVerification(report, None, f"checkpoints not checked: {exc.message}")
    for seq, digest in expect:
        if not report.ok:
            break
        found = log.events(after=seq - 1, limit=1)
        actual = found[0].hash if found and found[0].seq == seq else None
        if actual != digest:
            report = dataclasses.replace(
                report,
                broken=ChainBreak(
                    seq,
                    "anchor mismatch",
                    f"event {seq} hashes to {actual or 'nothing (it is missing)'}, the "
                    f"anchor recorded {digest}: the chain was rewritten from there on",
                ),
            )
    return AuditVerification(report, checkpoints)
