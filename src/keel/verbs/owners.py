"""`project.owners()`: who answers for each stage, and which alert rules reach nobody."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["Ownership", "owners"]


@dataclass(frozen=True)
class Ownership:
    """Each stage's owner (keel.yaml `owners:`) with what it covers, the stages nobody owns,
    and each alert rule with the owner it resolves to (None: it reaches nobody)."""

    stages: list[dict[str, Any]]
    unowned_stages: list[str]
    alert_rules_from: str
    alert_rules: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        """Every stage has an owner."""
        return not self.unowned_stages

    @property
    def unowned_rules(self) -> list[str]:
        return [r["rule"] for r in self.alert_rules if r["resolves_to"] is None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": self.stages,
            "unowned_stages": self.unowned_stages,
            "alert_rules_from": self.alert_rules_from,
            "alert_rules": self.alert_rules,
            "unowned_rules": self.unowned_rules,
        }


def owners(project: Workspace) -> Ownership:
    """Who owns each stage and which alert rules reach nobody (as `keel owners`): alerts,
    release requests and failed gates name these owners. `result.ok` is false when a stage
    has no owner."""
    from keel.monitoring.alerts import effective_rules, owner_of

    spec = project.spec
    named_owners = spec.owners
    rules = []
    for rule in effective_rules(spec):
        named = rule.owner or "monitoring"
        rules.append(
            {
                "rule": rule.name,
                "signal": rule.signal,
                "severity": rule.severity,
                "owner": rule.owner,
                "stage": named if named in named_owners.SCOPES else None,
                "resolves_to": owner_of(spec, rule),
            }
        )
    return Ownership(
        stages=[
            {"stage": stage, "owner": named_owners.of(stage), "covers": covers}
            for stage, covers in named_owners.SCOPES.items()
        ],
        unowned_stages=list(named_owners.missing()),
        alert_rules_from="keel.yaml" if spec.monitoring.alerts is not None else "defaults",
        alert_rules=rules,
    )
