"""`project.prometheus_rules()` and `project.grafana_dashboard()`: alerting rules and a
dashboard over the series `keel serve` exposes at /metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["GrafanaDashboard", "PrometheusRules", "grafana_dashboard", "prometheus_rules"]

DEFAULT_DASHBOARD_TITLE = "keel: serving and monitoring"


@dataclass(frozen=True)
class PrometheusRules:
    """Prometheus alerting rules: the rules `document`, its YAML `text` (what
    `promtool check rules` reads), each group with its rules' names, and where it was written
    (`output`, None when it was not)."""

    document: dict[str, Any]
    text: str
    output: Path | None = None

    @property
    def groups(self) -> list[dict[str, Any]]:
        return [
            {"name": g["name"], "rules": [r["alert"] for r in g["rules"]]}
            for g in self.document["groups"]
        ]

    @property
    def rules(self) -> int:
        return sum(len(g["rules"]) for g in self.document["groups"])

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "output": None if self.output is None else str(self.output),
            "rules": self.rules,
            "groups": self.groups,
        }
        if self.output is None:
            found["document"] = self.document
        return found


@dataclass(frozen=True)
class GrafanaDashboard:
    """A Grafana dashboard (`document`, JSON `text`), its panel count and uid, and where it
    was written (`output`). `to_dict()` is what `--json` prints with `--output`; without it,
    `--json` prints the dashboard itself."""

    document: dict[str, Any]
    text: str
    output: Path | None = None

    @property
    def panels(self) -> int:
        return sum(1 for panel in self.document["panels"] if panel["type"] != "row")

    @property
    def uid(self) -> str:
        return str(self.document["uid"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": None if self.output is None else str(self.output),
            "panels": self.panels,
            "uid": self.uid,
        }


def prometheus_rules(project: Workspace, *, output: Path | str | None = None) -> PrometheusRules:
    """Prometheus alerting rules for the project (as `keel export prometheus-rules`): one per
    rule of keel.yaml's monitoring.alerts (or keel's defaults), labelled with severity and
    owner, plus serving health and monitoring itself. With `output`, the YAML is written
    there (atomically); load it with Prometheus's rule_files."""
    from keel.monitoring.export import alert_rules, render_rules
    from keel.monitoring.export import prometheus_rules as rules_document

    spec = project.spec
    document = rules_document(
        alert_rules(spec), owners=spec.owners.model_dump(), window=spec.monitoring.window
    )
    text = render_rules(document)
    target = _written(output, text)
    return PrometheusRules(document, text, target)


def grafana_dashboard(
    project: Workspace | None = None,
    *,
    title: str = DEFAULT_DASHBOARD_TITLE,
    output: Path | str | None = None,
) -> GrafanaDashboard:
    """A Grafana dashboard over the series `keel serve` exposes (as `keel export grafana`):
    request rate, errors, latency, drift per feature, null rates, performance, label
    coverage, open alerts, prediction age. Needs no project (`keel.verbs.grafana_dashboard()`).
    With `output`, the JSON is written there (atomically). An empty title is a
    `ConfigError`."""
    from keel.errors import ConfigError
    from keel.monitoring.export import grafana_dashboard as dashboard

    if not title.strip():
        raise ConfigError("the dashboard needs a title", problems=[("title", "not empty")])
    document = dashboard(title=title)
    text = json.dumps(document, indent=2) + "\n"
    return GrafanaDashboard(document, text, _written(output, text))


def _written(output: Path | str | None, text: str) -> Path | None:
    if output is None:
        return None
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)
    return target
