"""`project.resolve_alert()`: close an open alert by hand, with an audit event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from keel.verbs._actor import ActorLike, acting_name

if TYPE_CHECKING:
    from keel.domain.monitoring import Alert
    from keel.workspace import Workspace

__all__ = ["ResolvedAlert", "resolve_alert"]


@dataclass(frozen=True)
class ResolvedAlert:
    """The alert as it stands once resolved."""

    alert: Alert

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert.to_dict()}


def resolve_alert(
    project: Workspace,
    alert_id: str,
    *,
    reason: str,
    actor: ActorLike = None,
    now: datetime | None = None,
) -> ResolvedAlert:
    """Resolve an open alert (by id or unique prefix) by hand, `reason` kept in the audit log
    (as `keel alerts resolve`). The next monitoring run opens it again if it still fires."""
    from datetime import UTC

    alert = project.metadata.monitoring.resolve_alert(
        alert_id,
        at=now or datetime.now(UTC),
        actor=acting_name(project, actor),
        reason=reason,
    )
    return ResolvedAlert(alert)
