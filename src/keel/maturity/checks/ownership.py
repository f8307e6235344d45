"""Ownership: does keel.yaml name who answers for each stage?"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.maturity.checks.production import _item
from keel.maturity.model import Item, Status

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__: list[str] = []


def _ownership(project: Workspace) -> list[Item]:
    from keel.monitoring.alerts import effective_rules, owner_of

    spec = project.spec
    owners = spec.owners
    missing = owners.missing()
    shown = ", ".join(f"{stage}: {owners.of(stage) or '-'}" for stage in owners.SCOPES)
    count = len(owners.SCOPES)
    stages_status: Status = (
        "pass" if not missing else "fail" if len(missing) == count else "partial"
    )
    stages = _item(
        "ownership",
        "ownership.stages",
        "every stage has an owner",
        stages_status,
        shown + (f" ({len(missing)} of {count} unowned)" if missing else ""),
        "keel.yaml: "
        + ", ".join(f"owners.{stage}: <person or team>" for stage in missing)
        + "; check with `keel owners`",
    )
    rules = effective_rules(spec)
    unowned = [rule for rule in rules if owner_of(spec, rule) is None]
    alerts_status: Status
    if not rules:
        alerts_status, evidence = "n/a", "no alert rules (monitoring.alerts: [])"
    elif not unowned:
        alerts_status, evidence = "pass", f"all {len(rules)} alert rules resolve to an owner"
    else:
        alerts_status = "fail" if len(unowned) == len(rules) else "partial"
        names = ", ".join(f"{rule.name} ({rule.owner or 'monitoring'})" for rule in unowned)
        evidence = f"{len(unowned)} of {len(rules)} alert rules resolve to nobody: {names}"
    stages_needed = sorted(
        {
            rule.owner or "monitoring"
            for rule in unowned
            if (rule.owner or "monitoring") in owners.SCOPES
        }
    )
    alerts = _item(
        "ownership",
        "ownership.alerts",
        "every alert rule reaches an owner",
        alerts_status,
        evidence,
        "keel.yaml: "
        + (
            ", ".join(f"owners.{stage}: <person or team>" for stage in stages_needed)
            or "an owner: on each rule"
        )
        + "; check with `keel owners`",
    )
    return [stages, alerts]
