"""`keel export prometheus-rules|grafana`: alerting rules and a dashboard for keel's /metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

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


def _write(output: Path | None, text: str) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(output)


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
    from keel.monitoring.export import alert_rules, prometheus_rules, render_rules

    spec = cli.project().spec
    document = prometheus_rules(
        alert_rules(spec), owners=spec.owners.model_dump(), window=spec.monitoring.window
    )
    text = render_rules(document)
    groups = [
        {"name": g["name"], "rules": [r["alert"] for r in g["rules"]]} for g in document["groups"]
    ]
    count = sum(len(g["rules"]) for g in groups)
    if as_json:
        if output is not None:
            _write(output, text)
        payload: dict[str, Any] = {"ok": True, "output": output, "rules": count, "groups": groups}
        if output is None:
            payload["document"] = document
        emit(True, payload, "")
        return 0
    _write(output, text)
    if output is not None:
        click.echo(f"wrote {count} alerting rules in {len(groups)} groups to {output}", err=True)
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
    from keel.monitoring.export import grafana_dashboard

    document = grafana_dashboard(title=title)
    text = json.dumps(document, indent=2) + "\n"
    if as_json and output is None:
        json_out().write(text)  # the dashboard is the JSON document
        return 0
    _write(output, text)
    panels = [p for p in document["panels"] if p["type"] != "row"]
    if as_json:
        emit(
            True, {"ok": True, "output": output, "panels": len(panels), "uid": document["uid"]}, ""
        )
    elif output is not None:
        click.echo(f"wrote a dashboard of {len(panels)} panels to {output}", err=True)
    return 0
