"""`keel demo [--example NAME] [DIR]`: the whole lifecycle on an example project, narrated."""

from __future__ import annotations

import os
from pathlib import Path

import click

from keel.cli.output import emit, json_option
from keel.demo.stories import STORIES

__all__ = ["demo"]


@click.command()
@click.argument(
    "directory", required=False, type=click.Path(file_okay=False, path_type=Path), metavar="[DIR]"
)
@click.option(
    "--example",
    type=click.Choice(list(STORIES)),
    default="flights",
    show_default=True,
    help="The story: flights (classification, hourly timestamps) or bikeshare (regression, "
    "daily dates).",
)
@json_option
def demo(directory: Path | None, example: str, as_json: bool) -> int:
    """Run keel's whole lifecycle on an example project, in DIR (kept for exploring
    afterwards; default: a new temp folder): contract, training, gates and an approval, a
    real server on loopback, months of traffic with labels arriving, drift and performance
    alerts, retraining, canary and automatic promotion, a bad model rolled back, a
    prediction's lineage, the audit log verified. flights: the 2013 New York flights, will a
    flight arrive late? bikeshare: Washington DC's hourly bike rentals in 2011-2012, how many?

    The stores are the project's defaults (in DIR/.keel) unless KEEL_DB_URL or KEEL_ARTIFACTS
    name others; a database that already holds a project's history is refused."""
    from keel.demo import run_demo

    # The stores the environment chooses (KEEL_DB_URL, KEEL_ARTIFACTS, KEEL_KEYS), as every
    # other command honours them; the demo sets its own users.
    settings = {name: value for name, value in os.environ.items() if name.startswith("KEEL_")}
    result = run_demo(
        directory,
        say=(lambda _text: None) if as_json else click.echo,
        example=example,
        env=settings,
    )
    emit(
        as_json,
        {
            "ok": True,
            "example": example,
            "folder": str(result.folder),
            "report": None if result.report is None else str(result.report),
            "prediction": result.prediction,
        },
        "",
    )
    return 0
