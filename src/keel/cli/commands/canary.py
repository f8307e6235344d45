"""`keel canary status|check`: the canary against production, and acting on the verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import emit, json_option, parse_time
from keel.domain.duration import format_duration

if TYPE_CHECKING:
    from keel.verbs import CanaryAnalysis, CanaryOutcome

__all__ = ["canary"]


@click.group()
def canary() -> None:
    """Canary analysis: compare the version holding `canary` with production, then promote
    it, roll it back, or keep watching (retraining.canary in keel.yaml)."""


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _analysis_text(analysis: CanaryAnalysis) -> list[str]:
    production = "none" if analysis.production is None else f"v{analysis.production}"
    lines = [
        f"{analysis.model}: v{analysis.canary} on canary since {analysis.since:%Y-%m-%d %H:%M:%S} "
        f"UTC ({analysis.canary_share:.0%} of requests), production {production}",
        f"period {analysis.start:%Y-%m-%d %H:%M:%S} .. {analysis.end:%Y-%m-%d %H:%M:%S} UTC "
        f"(duration needed: {format_duration(analysis.duration)}, predictions needed: "
        f"{analysis.min_predictions:,} each)",
        "",
        f"{'SLOT':<11} {'VERSION':>7} {'PREDICTIONS':>11} {'REQUESTS':>9} {'P50 MS':>8} "
        f"{'P99 MS':>8} {'LABELLED':>8} {(analysis.metric or 'METRIC').upper():>9}",
    ]
    for slot in (analysis.production_slot, analysis.canary_slot):
        version = "-" if slot.version is None else f"v{slot.version}"
        value = "-" if slot.performance is None else f"{slot.performance:.4f}"
        lines.append(
            f"{slot.slot:<11} {version:>7} {slot.predictions:>11,} {slot.requests:>9,} "
            f"{_number(slot.latency_p50_ms):>8} {_number(slot.latency_p99_ms):>8} "
            f"{slot.labelled:>8,} {value:>9}"
        )
    if analysis.criteria:
        lines += ["", f"{'CRITERION':<12} {'VALUE':>9} {'LIMIT':>7}  {'STATE':<12} DETAIL"]
        for c in analysis.criteria:
            state = "BREACHED" if c.breached else "ok" if c.judged else "not judged"
            lines.append(
                f"{c.name:<12} {_number(c.value):>9} {_number(c.limit):>7}  {state:<12} {c.detail}"
            )
    lines += ["", f"verdict: {analysis.verdict}"]
    lines += [f"  {reason}" for reason in analysis.reasons]
    return lines


@canary.command("status")
@click.option("--model", "-m", default=None, help="The model (default: the project's).")
@click.option("--now", default=None, metavar="TIME", help="End the period here (default: now).")
@json_option
@pass_cli
def status(cli: CliContext, model: str | None, now: str | None, as_json: bool) -> int:
    """The canary against production now, and the verdict a check would act on."""
    found = cli.project().canary_status(model=model, now=parse_time(now, "--now"))
    analysis = found.analysis
    if analysis is None:
        emit(as_json, {"ok": True, **found.to_dict()}, f"{found.model}: no canary")
        return 0
    emit(
        as_json,
        {"ok": True, **found.to_dict()},
        lambda: "\n".join(_analysis_text(analysis)),
    )
    return 0


_DONE = {
    "none": "no canary: nothing to do",
    "watch": "still watching: nothing changed",
    "promoted": "promoted: production now serves v{canary}; canary removed",
    "requested": "production needs approval: release request opened",
    "pending": "waiting for approval of the open release request",
    "refused": "the release gates refuse v{canary} for production: canary removed",
    "rolled_back": "rolled back: canary v{canary} removed; production serves every request",
    "cleared": "v{canary} already holds production: canary removed",
    "conflict": "another check changed the aliases first: nothing changed",
}


def _outcome_text(outcome: CanaryOutcome) -> str:
    lines = [] if outcome.analysis is None else [*_analysis_text(outcome.analysis), ""]
    lines.append(_DONE[outcome.action].format(canary=outcome.canary))
    if outcome.request is not None:
        lines.append(f"  request {outcome.request.id}")
    if outcome.events:
        lines.append("  audit events " + ", ".join(f"#{e.seq} {e.kind}" for e in outcome.events))
    if outcome.note:
        lines.append(f"  {outcome.note}")
    return "\n".join(lines)


@canary.command("check")
@click.option("--model", "-m", default=None, help="The model (default: the project's).")
@click.option("--now", default=None, metavar="TIME", help="End the period here (default: now).")
@json_option
@pass_cli
def check(cli: CliContext, model: str | None, now: str | None, as_json: bool) -> int:
    """Analyse the canary and act: promote it (through the release policy), roll it back,
    or keep watching. Safe to schedule, also from several machines at once."""
    outcome = cli.project().canary_check(model=model, now=parse_time(now, "--now"))
    document: dict[str, Any] = outcome.to_dict()
    emit(as_json, document, lambda: _outcome_text(outcome))
    return 0
