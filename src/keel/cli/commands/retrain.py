"""`keel retrain` and `keel watch`: the closed loop, one pass or as a long-running process."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from types import FrameType
from typing import Any

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import duration_callback, emit, json_option, parse_time
from keel.domain.identity import Actor
from keel.domain.metric import direction_words

__all__ = ["retrain", "watch"]

#: Who `keel watch` acts as, in the audit log and on alerts.
_WATCH = Actor("keel-watch")


def _describe(outcome: Any) -> str:
    lines = [f"{outcome.model}: {outcome.decision}"]
    for trigger in outcome.triggers:
        mark = "FIRED" if trigger.fired else "     "
        lines.append(f"  {mark} {trigger.name}: {trigger.reason}")
    if outcome.challenger is not None:
        lines.append(f"  challenger: {outcome.model}@{outcome.challenger}")
    if outcome.comparison is not None:
        c = outcome.comparison
        lines.append(
            f"  on the newest {c.rows:,} labelled predictions: {c.metric} "
            f"v{c.challenger} {c.challenger_value:.4f} vs v{c.champion} {c.champion_value:.4f} "
            f"({direction_words(c.higher_is_better)}: improvement {c.improvement:+.4f}, "
            f"needed {c.needed:+g})"
        )
        if c.left_out:
            lines.append(
                f"  left out {c.left_out:,} labelled predictions older than the challenger's "
                "holdout: it may have trained on them"
            )
        if c.seen:
            lines.append(
                f"  caution: the challenger may have trained on {c.seen:,} of those rows "
                "(too few newer labelled predictions to compare on): the comparison favours it"
            )
    if outcome.release is not None:
        r = outcome.release
        if r.outcome == "pending" and r.request is not None:
            lines.append(
                f"  release: {r.ref} -> {r.alias} waits for approval: keel approve {r.request.id}"
            )
        elif r.outcome == "promoted":
            lines.append(f"  release: {r.ref} now holds {r.alias}")
        else:
            failed = "; ".join(g.reason for g in r.gates if not g.passed)
            lines.append(f"  release refused: {failed or r.note or 'see keel requests'}")
    lines.extend(f"  note: {n}" for n in outcome.notes)
    return "\n".join(line for line in lines if line)


@click.command()
@click.option("--model", "-m", default=None, help="The model (default: the project's).")
@click.option(
    "--if-triggered",
    is_flag=True,
    help="Retrain only when a trigger of retraining.triggers fired (what schedulers run).",
)
@click.option("--now", default=None, metavar="TIME", help="Evaluate triggers as of this time.")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="TIME",
    help="Check the data contract's freshness as of this time (historical data).",
)
@json_option
@pass_cli
def retrain(
    cli: CliContext,
    model: str | None,
    if_triggered: bool,
    now: str | None,
    as_of: str | None,
    as_json: bool,
) -> int:
    """Train a challenger when production calls for it, judge it against the champion on
    the newest labelled predictions, record the decision in the audit log, and release it
    as retraining.promotion says (a request, a canary, or production).

    Exit 0 when nothing fired or the decision was carried out, 1 when the release was
    refused, 8 when it waits for approval.
    """
    outcome = cli.project().retrain(
        model=model,
        if_triggered=if_triggered,
        now=parse_time(now, "--now"),
        as_of=parse_time(as_of, "--as-of"),
    )
    emit(
        as_json,
        {"ok": outcome.decision != "refused", **outcome.to_dict()},
        lambda: _describe(outcome),
    )
    if outcome.decision == "refused":
        return 1
    if outcome.decision == "pending":
        from keel.cli.errors import EXIT_PENDING

        return EXIT_PENDING
    return 0


@click.command()
@click.option("--model", "-m", default=None, help="The model (default: the project's).")
@click.option("--once", is_flag=True, help="One pass, then exit (for cron or a CronJob).")
@click.option(
    "--interval",
    default="5m",
    show_default=True,
    callback=duration_callback,
    metavar="DURATION",
    help="Time between passes.",
)
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="TIME",
    help="Check the data contract's freshness as of this time when retraining (replays).",
)
@json_option
@pass_cli
def watch(
    cli: CliContext,
    model: str | None,
    once: bool,
    interval: timedelta,
    as_of: str | None,
    as_json: bool,
) -> int:
    """The closed loop: each pass monitors the newest windows (raising and resolving
    alerts), judges a canary if one is running (promote or roll back), and retrains when a
    trigger fired. Runs until SIGTERM or Ctrl-C, or one pass with --once."""
    moment = parse_time(as_of, "--as-of")
    project = cli.project()
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _stop)
    passes: list[dict[str, Any]] = []
    try:
        while True:
            done = project.watch_pass(model=model, as_of=moment, actor=_WATCH)
            passes.append(done.to_dict())
            if not as_json:
                report = done.monitor
                click.echo(
                    f"monitor: {len(report.windows)} windows, {len(report.opened)} alerts "
                    f"opened, {len(report.resolved)} resolved, {len(report.open_alerts)} open"
                )
                if done.canary is not None:
                    click.echo(f"canary: {done.canary.action}")
                click.echo(_describe(done.retrain))
            if once or stop.wait(interval.total_seconds()):
                break
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    if as_json:
        emit(True, {"ok": True, "passes": passes}, "")
    return 0
