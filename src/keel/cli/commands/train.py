"""`keel train`: run the project's pipeline, reusing every step whose inputs did not change."""

from __future__ import annotations

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import emit, json_option, parse_time
from keel.pipeline.train import TrainResult, train

__all__ = ["train_command"]


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
    lines.extend(f"note      {note}" for note in result.notes)
    return "\n".join(lines)


@click.command(name="train")
@click.option("--force", is_flag=True, help="Re-run every step and register a new version.")
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

    def progress(step: str, text: str) -> None:
        if not as_json:
            click.echo(f"  {step:<9} {text}", err=True)

    result = train(project, force=force, as_of=parse_time(as_of, "--as-of"), progress=progress)
    payload = {
        "ok": True,
        "run": result.run_id,
        "dataset": result.dataset.id,
        "steps": [
            {
                "step": step.step,
                "outcome": step.outcome,
                "seconds": round(step.seconds, 3),
                "output": step.output,
                "detail": step.detail,
            }
            for step in result.steps
        ],
        "metrics": result.metrics,
        "package": result.package,
        "model": None
        if result.registered is None
        else {"name": result.registered.model, "version": result.registered.version},
        "notes": result.notes,
    }
    emit(as_json, payload, lambda: _render(result))
    return 0
