"""`keel export prometheus-rules|grafana`: alerting rules and a dashboard for keel's /metrics."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import emit, json_option, json_out

__all__ = ["export"]

_OUTPUT = click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here (atomically) instead of to stdout.",
)


@click.group()
def export() -> None:
    """Alerting rules and a dashboard for keel serve's /metrics."""


@export.command("prometheus-rules")
@_OUTPUT
@json_option
@pass_cli
def prometheus_rules(cli: CliContext, output: Path | None, as_json: bool) -> int:
    """Prometheus alerting rules for keel.yaml's alerts and serving health.

    One rule per rule of monitoring.alerts (or keel's defaults) on the series `keel serve`
    exposes, labelled with severity and owner, plus serving health (errors, refused requests,
    p99 latency, no traffic, load failures) and monitoring itself (store unreachable, `keel
    monitor` not running).

    Check the file with `promtool check rules FILE`; load it with Prometheus's rule_files.
    """
    written = cli.project().prometheus_rules(output=output)
    if as_json:
        emit(True, {"ok": True, **written.to_dict()}, "")
    elif output is None:
        sys.stdout.write(written.text)
    else:
        click.echo(
            f"wrote {written.rules} alerting rules in {len(written.groups)} groups to {output}",
            err=True,
        )
    return 0


@export.command("grafana")
@_OUTPUT
@click.option("--title", default="keel: serving and monitoring", show_default=True)
@json_option
def grafana(output: Path | None, title: str, as_json: bool) -> int:
    """A Grafana dashboard over the series keel serve exposes.

    JSON, schema 39: request rate, errors, latency p50/p99, drift per feature, null rates,
    performance, label coverage, open alerts, prediction age. Import it in Grafana and pick
    the Prometheus that scrapes `keel serve` for its DS_PROMETHEUS input. Needs no project.
    """
    from keel.verbs import grafana_dashboard

    made = grafana_dashboard(title=title, output=output)
    if as_json and output is None:
        json_out().write(made.text)  # the dashboard is the JSON document
        return 0
    if output is None:
        sys.stdout.write(made.text)
    elif as_json:
        emit(True, {"ok": True, **made.to_dict()}, "")
    else:
        click.echo(f"wrote a dashboard of {made.panels} panels to {output}", err=True)
    return 0
