"""`keel owners` and `keel audit`: who answers for each stage, and the project's maturity
scorecard (not to be confused with `keel audit-log`, the hash-chained event log)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.errors import EXIT_CHECK_FAILED, EXIT_OK
from keel.cli.output import emit, json_option
from keel.maturity import LEVELS

if TYPE_CHECKING:
    from keel.verbs import Scorecard

__all__ = ["audit", "owners"]

_MARKS = {"pass": "PASS", "partial": "PART", "fail": "FAIL", "n/a": "n/a"}


def _owners_text(document: dict[str, Any]) -> str:
    lines = [f"{'STAGE':<11} {'OWNER':<16} COVERS"]
    for row in document["stages"]:
        owner = row["owner"] or "-  (UNOWNED)"
        lines.append(f"{row['stage']:<11} {owner:<16} {row['covers']}")
    rules = document["alert_rules"]
    unowned = [r for r in rules if r["resolves_to"] is None]
    source = "keel.yaml" if document["alert_rules_from"] == "keel.yaml" else "keel's defaults"
    lines.append(
        f"alert rules: {len(rules)} from {source}, "
        + (f"{len(unowned)} reach nobody:" if unowned else "each reaches an owner")
    )
    lines.extend(
        f"  {r['rule']:<20} {r['signal']:<18} owner: {r['owner'] or 'monitoring'} -> nobody"
        for r in unowned
    )
    if document["unowned_stages"]:
        names = ", ".join(document["unowned_stages"])
        lines.append(
            f"UNOWNED: {names}. Name a person or team in keel.yaml: "
            + ", ".join(f"owners.{stage}: ..." for stage in document["unowned_stages"])
        )
    return "\n".join(lines)


@click.command()
@json_option
@pass_cli
def owners(cli: CliContext, as_json: bool) -> int:
    """Show who owns each stage (keel.yaml `owners:`) and which alert rules reach nobody.

    Alerts, approval requests and failed gates name these owners, and the audit events
    webhooks receive carry them. Exits 1 when a stage has no owner, so CI can require one.
    """
    found = cli.project().owners()
    document = {"ok": found.ok, **found.to_dict()}
    emit(as_json, document, lambda: _owners_text(document))
    return EXIT_OK if found.ok else EXIT_CHECK_FAILED


def _audit_text(name: str, card: Scorecard, shortfall: list[str]) -> str:
    lines = [
        f"maturity of {name}: level {card.level} ({card.level_name}), "
        f"score {card.score}/{card.max_score}"
    ]
    width = max(len(item.key) for item in card.items)
    area = None
    for item in card.items:
        if item.area != area:
            area = item.area
            lines.append(f"\n{area}")
        lines.append(
            f"  {_MARKS[item.status]:<4}  {item.points}/{item.max_points}  "
            f"{item.key:<{width}}  {item.title}: {item.evidence}"
        )
        if item.fix:
            lines.append(f"  {'':<4}  {'':<3}  {'':<{width}}  fix: {item.fix}")
    following = card.next_level
    if following is not None:
        blocked = ", ".join(item.key for item in card.blocking())
        lines.append(f"\nnext: level {following.number} ({following.name}) needs {blocked}")
    lines.extend(shortfall)
    return "\n".join(lines)


@click.command()
@click.option(
    "--min-level",
    type=click.IntRange(0, len(LEVELS) - 1),
    default=None,
    help="Exit 1 below this level (0 ad hoc, 1 reproducible, 2 controlled, 3 monitored, "
    "4 operated).",
)
@click.option(
    "--min-score", type=click.IntRange(min=0), default=None, help="Exit 1 below this score."
)
@json_option
@pass_cli
def audit(cli: CliContext, min_level: int | None, min_score: int | None, as_json: bool) -> int:
    """The project's maturity scorecard: each item with its evidence and fix, a score and a
    level, computed from keel.yaml, the stores and git.

    Exits 0 whatever the level, unless --min-level or --min-score is given and not met.
    """
    found = cli.project().scorecard(min_level=min_level, min_score=min_score)
    document = {"ok": found.ok, **found.to_dict()}
    emit(as_json, document, lambda: _audit_text(found.project, found.card, found.shortfall))
    return EXIT_OK if found.ok else EXIT_CHECK_FAILED
