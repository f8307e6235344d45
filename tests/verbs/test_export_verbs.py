"""The verbs behind `keel export prometheus-rules|grafana`: the CLI's `--json` is the verb's
result document (on SQLite and on PostgreSQL for the project's rules), and a Python user gets
the same rules and dashboard, written or not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from keel import GrafanaDashboard, PrometheusRules
from keel.errors import ConfigError
from keel.verbs import grafana_dashboard
from tests.fixtures.cli import Keel
from tests.verbs.test_verbs import Calls, _document, _open, _same, calls, flights

__all__ = ["calls", "flights"]  # fixtures shared with test_verbs.py


def test_prometheus_rules_prints_its_result(
    keel: Keel, flights: Path, calls: Calls, tmp_path: Path
) -> None:
    shown = keel("-C", flights, "export", "prometheus-rules", "--json")
    assert shown.code == 0, shown.err
    rules = _same(shown, calls, "prometheus_rules", PrometheusRules)
    assert rules.output is None and rules.rules == sum(len(g["rules"]) for g in rules.groups)
    assert yaml.safe_load(rules.text) == rules.document

    out = tmp_path / "rules" / "keel.yaml"
    written = keel("-C", flights, "export", "prometheus-rules", "-o", out, "--json")
    assert written.code == 0, written.err
    kept = _same(written, calls, "prometheus_rules", PrometheusRules)
    assert kept.output == out and out.read_text("utf-8") == kept.text
    assert "document" not in written.json()

    with _open(flights) as project:
        assert project.prometheus_rules().document == rules.document
    plain = keel("-C", flights, "export", "prometheus-rules")
    assert plain.out == rules.text


def test_grafana_dashboard_prints_its_result(keel: Keel, tmp_path: Path) -> None:
    out = tmp_path / "dashboard.json"
    written = keel("export", "grafana", "-o", out, "--title", "flights", "--json")
    assert written.code == 0, written.err
    made = grafana_dashboard(title="flights")
    assert isinstance(made, GrafanaDashboard) and made.output is None
    assert _document(written.json()) == {**made.to_dict(), "output": str(out)}
    assert json.loads(out.read_text("utf-8")) == made.document
    # Without --output, --json prints the dashboard itself.
    shown = keel("export", "grafana", "--title", "flights", "--json")
    assert shown.json() == made.document and made.document["title"] == "flights"
    with pytest.raises(ConfigError) as bad:
        grafana_dashboard(title=" ")
    assert [field for field, _ in bad.value.problems] == ["title"]
