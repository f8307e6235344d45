"""`keel reproduce MODEL@VERSION`: rebuild a model version from its lineage and compare."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.errors import EXIT_CHECK_FAILED, EXIT_OK
from keel.cli.output import emit, json_option
from keel.domain.model import parse_model_ref

if TYPE_CHECKING:
    from keel.verbs import ReproduceReport

__all__ = ["reproduce_command"]


def _render(report: ReproduceReport) -> str:
    lines = [
        f"{report.model}: rebuilt run {report.original_run} as {report.new_run}",
        f"code         {report.code_source}",
    ]
    if report.environment_differences:
        lines.append(f"environment  {len(report.environment_differences)} differences:")
        lines.extend(f"  {line}" for line in report.environment_differences)
    else:
        lines.append("environment  identical to the recorded lock")
    for name, (recorded, reproduced) in sorted(report.metrics.items()):
        lines.append(f"metric       {name}: recorded {recorded:.6f}, reproduced {reproduced:.6f}")
    lines.append(
        "package      "
        + ("byte-identical" if report.package_identical else "bytes differ (see metrics)")
    )
    lines.append("REPRODUCED" if report.metrics_match else "NOT REPRODUCED: metrics differ")
    return "\n".join(lines)


@click.command(name="reproduce")
@click.argument("ref", metavar="MODEL@VERSION")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=1e-9,
    show_default=True,
    help="How far a reproduced metric may be from the recorded one.",
)
@json_option
@pass_cli
def reproduce_command(cli: CliContext, ref: str, tolerance: float, as_json: bool) -> int:
    """Rebuild MODEL@VERSION from its dataset, code and params; exit 1 if metrics differ."""
    parse_model_ref(ref)
    project = cli.project()

    def progress(step: str, text: str) -> None:
        if not as_json:
            click.echo(f"  {step:<9} {text}", err=True)

    report = project.reproduce(ref, tolerance=tolerance, progress=progress)
    emit(as_json, report.to_dict(), lambda: _render(report))
    return EXIT_OK if report.metrics_match else EXIT_CHECK_FAILED
