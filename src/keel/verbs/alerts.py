"""`project.alerts()` and `project.alert()`: the alerts monitoring raised."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from keel.domain.monitoring import Alert
    from keel.workspace import Workspace

__all__ = ["ALERT_STATES", "AlertDetail", "Alerts", "alert", "alerts"]

#: The states `alerts` filters on (None: every alert).
ALERT_STATES: Final = ("open", "resolved")


@dataclass(frozen=True)
class Alerts:
    """Alerts, newest first, each naming its owner."""

    alerts: list[Alert]

    def to_dict(self) -> dict[str, Any]:
        return {"alerts": [a.to_dict() for a in self.alerts]}


@dataclass(frozen=True)
class AlertDetail:
    """One alert with its evidence."""

    alert: Alert

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert.to_dict()}


def alerts(
    project: Workspace,
    *,
    model: str | None = None,
    state: str | None = "open",
    limit: int = 100,
) -> Alerts:
    """The newest `limit` alerts (as `keel alerts list`): of `model` if given, in `state`
    (`open`, `resolved`, or None for all)."""
    from keel.errors import ConfigError

    if state is not None and state not in ALERT_STATES:
        raise ConfigError(
            f"unknown alert state {state!r}",
            problems=[("state", f"must be one of {', '.join(ALERT_STATES)}")],
        )
    if limit < 1:
        raise ConfigError(f"limit {limit} is below 1", problems=[("limit", "must be at least 1")])
    return Alerts(project.metadata.monitoring.alerts(model=model, state=state, limit=limit))


def alert(project: Workspace, alert_id: str) -> AlertDetail:
    """One alert by id, with its evidence (as `keel alerts show`); `NotFound` otherwise."""
    return AlertDetail(project.metadata.monitoring.alert(alert_id))
