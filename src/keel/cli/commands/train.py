"""`keel train`: run the project's pipeline, reusing every step whose inputs did not change."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import emit, json_option, parse_time

if TYPE_CHECKING:
    from keel.verbs import TrainResult

__all__ = ["StepBar", "bar_line", "train_command"]

_STEPS = ("snapshot", "contract", "features", "train", "evaluate", "register")


def bar_line(done: int, total: int, step: str, seconds: float, width: int = 24) -> str:
    """`[#########-----------]  3/6  train  12.3s`: the pipeline's progress, one line."""
    filled = round(width * done / total) if total else width
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total}  {step:<9} {seconds:6.1f}s"


class StepBar:
    """A live progress bar on a terminal's stderr while the pipeline runs, redrawn every
    0.2 s so that a long step (training) shows its elapsed time; plain lines elsewhere."""

    def __init__(self, live: bool) -> None:
        self._live = live
        self._done = 0
        self._step = _STEPS[0]
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._draw_forever, daemon=True)
        if live:
            self._thread.start()

    def update(self, step: str, text: str) -> None:
        with self._lock:
            if self._live:
                click.echo("\r\033[K", nl=False, err=True)
            click.echo(f"  {step:<9} {text}", err=True)
            if step in _STEPS:
                self._done = _STEPS.index(step) + 1
                following = _STEPS[min(self._done, len(_STEPS) - 1)]
                self._step, self._started = following, time.monotonic()

    def close(self) -> None:
        self._stop.set()
        if self._live:
            self._thread.join(timeout=1)
            click.echo("\r\033[K", nl=False, err=True)

    def _draw_forever(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                line = bar_line(
                    self._done, len(_STEPS), self._step, time.monotonic() - self._started
                )
                click.echo(f"\r{line}", nl=False, err=True)


def _render(result: TrainResult) -> str:
    lines = [f"run {result.run_id}  dataset {result.dataset.short}"]
    for step in result.steps:
        mark = {"cache_hit": "cached", "ran": "ran", "skipped": "skipped"}[step.outcome]
        lines.append(f"  {step.step:<9} {mark:<8} {step.seconds:7.2f}s  {step.detail}")
    metrics = "  ".join(f"{name} {value:.4f}" for name, value in result.metrics.items())
    lines.append(f"metrics   {metrics}")
    if result.registered is not None:
        version = result.registered
        lines.append(f"model     {version.model}@{version.version} (alias candidate)")
    elif result.unchanged is not None:
        lines.append(f"model     unchanged: same as {result.unchanged.ref}, nothing registered")
    lines.extend(f"note      {note}" for note in result.notes)
    return "\n".join(lines)


@click.command(name="train")
@click.option(
    "--force",
    is_flag=True,
    help="Re-run every step; a model identical to a registered version is not registered again.",
)
@click.option(
    "--as-of",
    help="Check the data's freshness as of this time (ISO-8601; default: now). "
    "For training on historical data.",
)
@json_option
@pass_cli
def train_command(cli: CliContext, force: bool, as_of: str | None, as_json: bool) -> int:
    """Train: snapshot, contract check, split, features, train, evaluate, register."""
    project = cli.project()
    moment = parse_time(as_of, "--as-of")
    if as_json:
        result = project.train(force=force, as_of=moment)
    else:
        bar = StepBar(live=sys.stderr.isatty())
        try:
            result = project.train(force=force, as_of=moment, progress=bar.update)
        finally:
            bar.close()
    emit(as_json, {"ok": True, **result.to_dict()}, lambda: _render(result))
    return 0
