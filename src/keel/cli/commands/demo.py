"""`keel demo [DIR]`: the whole lifecycle on the flights example, narrated."""

from __future__ import annotations

from pathlib import Path

import click

from keel.cli.output import emit, json_option

__all__ = ["demo"]


@click.command()
@click.argument(
    "directory", required=False, type=click.Path(file_okay=False, path_type=Path), metavar="[DIR]"
)
@json_option
def demo(directory: Path | None, as_json: bool) -> int:
    """Run keel's whole lifecycle on the 2013 New York flights, in DIR (kept for exploring
    afterwards; default: a new temp folder): contract, training, gates and an approval, a
    real server on loopback, months of traffic with labels arriving, drift and performance
    alerts, retraining, canary and automatic promotion, a bad model rolled back, a
    prediction's lineage, the audit log verified."""
    from keel.demo import run_demo

    result = run_demo(directory, say=(lambda _text: None) if as_json else click.echo)
    emit(
        as_json,
        {
            "ok": True,
            "folder": str(result.folder),
            "report": None if result.report is None else str(result.report),
            "prediction": result.prediction,
        },
        "",
    )
    return 0
