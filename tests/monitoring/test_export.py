"""Prometheus rules and the Grafana dashboard, checked by Prometheus's own promtool: the rules
load, fire on synthetic series as keel's alerts would, and the dashboard's queries parse and
name only series keel exposes."""

from __future__ import annotations

import importlib.resources
import json
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from keel.monitoring.export import (
    alert_rules,
    grafana_dashboard,
    prometheus_rules,
    promql_duration,
    render_rules,
)
from keel.monitoring.prometheus import metric_names
from keel.serving.metrics import ServingMetrics
from keel.spec import ProjectSpec
from tests.fixtures.cli import Keel

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
MODEL = "flights-delay"


def spec(**monitoring: Any) -> ProjectSpec:
    return ProjectSpec.model_validate(
        {
            "version": 1,
            "name": MODEL,
            "owners": {"data": "dana", "training": "tom", "monitoring": "mo"},
            "retraining": {"triggers": {"performance": {"metric": "roc_auc", "below": 0.7}}},
            "monitoring": {"freshness": {"predictions": "1h", "feedback": "2d"}, **monitoring},
        }
    )


def rules_of(project: ProjectSpec) -> dict[str, Any]:
    return prometheus_rules(
        alert_rules(project), owners=project.owners.model_dump(), window=project.monitoring.window
    )


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def by_alert(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in document["groups"] for r in g["rules"]}


def test_one_prometheus_rule_per_alert_rule_with_owner_and_severity() -> None:
    project = spec()
    document = rules_of(project)
    keel_rules = alert_rules(project)
    monitoring = document["groups"][0]
    assert monitoring["name"] == "keel-monitoring"
    assert [r["labels"]["rule"] for r in monitoring["rules"]] == [r.name for r in keel_rules]
    rules = by_alert(document)

    drift = rules["KeelFeatureDrift"]
    # No threshold in the rule: the drift test's own verdict decides, the value is the score.
    assert drift["expr"] == (
        'keel_drift_score{feature=~"inputs\\\\..*"} and on (model, version, feature) '
        '(label_replace(keel_signal_breached{signal="drift"} == 1, "feature", "$1", '
        '"subject", "(.*)"))'
    )
    assert drift["labels"] == {
        "severity": "warning",
        "owner": "dana",  # the data stage's owner
        "rule": "feature-drift",
        "signal": "drift",
        "source": "keel",
    }
    assert "for" not in drift
    performance = rules["KeelPerformance"]
    assert performance["expr"] == 'keel_performance{metric="roc_auc"} < 0.7'
    assert performance["labels"]["severity"] == "critical"
    assert performance["labels"]["owner"] == "tom"
    assert rules["KeelPredictionsStopped"]["expr"] == "keel_prediction_age_seconds > 3600"
    assert rules["KeelFeedbackStopped"]["expr"] == "keel_feedback_age_seconds > 172800"
    assert rules["KeelTrafficDrop"]["expr"] == 'keel_monitor_signal{signal="volume"} < 0.5'
    for rule in rules.values():
        assert {"summary", "description"} <= rule["annotations"].keys()
        assert rule["labels"]["severity"] in ("info", "warning", "critical")
    # keel.yaml's own prediction-age rule replaces the generic one.
    assert "KeelPredictionLogStale" not in rules
    assert {
        "KeelServerErrors",
        "KeelRequestsRefused",
        "KeelSlowPredictions",
        "KeelNoPredictions",
        "KeelModelLoadFailed",
        "KeelMonitoringStoreDown",
        "KeelMonitorNotRunning",
    } <= rules.keys()


def test_configured_rules_hold_for_their_windows() -> None:
    project = spec(
        window="6h",
        alerts=[
            {
                "name": "distance-drift",
                "signal": "drift",
                "subject": "inputs.dist*",
                "threshold": 0.25,
                "windows": 3,
                "severity": "critical",
                "owner": "oncall-ml",
            },
            {"name": "labels", "signal": "label_coverage", "threshold": 0.2, "direction": "below"},
        ],
    )
    rules = by_alert(rules_of(project))
    drift = rules["KeelDistanceDrift"]
    assert drift["expr"] == 'keel_drift_score{feature=~"inputs\\\\.dist.*"} > 0.25'
    assert drift["for"] == "12h"  # the third window over the threshold, 6h apart
    assert drift["labels"]["owner"] == "oncall-ml"  # a person, as named
    assert rules["KeelLabels"]["expr"] == "keel_label_coverage < 0.2"
    assert rules["KeelLabels"]["labels"]["owner"] == "mo"  # no owner: monitoring's
    assert "KeelFeatureDrift" not in rules  # configured rules replace the defaults
    assert "KeelPredictionLogStale" in rules


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(days=1, hours=12), "1d12h"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(milliseconds=250), "250ms"),
    ],
)
def test_promql_durations(duration: timedelta, text: str) -> None:
    assert promql_duration(duration) == text


@needs_promtool
@pytest.mark.parametrize("window", ["1d", "1h"])
def test_promtool_checks_the_rules(tmp_path: Path, window: str) -> None:
    project = spec(window=window)
    path = tmp_path / "keel.rules.yml"
    path.write_text(render_rules(rules_of(project)))
    checked = promtool("check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def _series(labels: dict[str, str], name: str) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}"


@needs_promtool
def test_the_rules_fire_on_synthetic_series(tmp_path: Path) -> None:
    """promtool's rule unit tests: a feature's drift test firing, predictions going stale,
    performance falling, server errors and silence raise the alerts keel would."""
    (tmp_path / "keel.rules.yml").write_text(render_rules(rules_of(spec())))
    model = {"model": MODEL}
    feature = {**model, "version": "2", "feature": "inputs.distance", "test": "ks"}
    calm = {**model, "version": "2", "feature": "inputs.carrier", "test": "chi2"}
    tests = {
        "rule_files": ["keel.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # Drift: the statistic is high from minute 1, but the test's verdict says
                    # drifted only from minute 5; carrier never drifts.
                    {"series": _series(feature, "keel_drift_score"), "values": "0.3x10"},
                    {
                        "series": _series(
                            {
                                **model,
                                "version": "2",
                                "signal": "drift",
                                "subject": "inputs.distance",
                            },
                            "keel_signal_breached",
                        ),
                        "values": "0 0 0 0 0 1x6",
                    },
                    {"series": _series(calm, "keel_drift_score"), "values": "0.9x10"},
                    {
                        "series": _series(
                            {
                                **model,
                                "version": "2",
                                "signal": "drift",
                                "subject": "inputs.carrier",
                            },
                            "keel_signal_breached",
                        ),
                        "values": "0x10",
                    },
                    # Freshness: predictions stop arriving.
                    {
                        "series": _series(model, "keel_prediction_age_seconds"),
                        "values": "60 7300x10",
                    },
                    # Performance falls under the trigger.
                    {
                        "series": _series(
                            {**model, "version": "2", "metric": "roc_auc"}, "keel_performance"
                        ),
                        "values": "0.8 0.8 0.65x9",
                    },
                    # Serving: one request in ten fails with a 503.
                    {
                        "series": _series(
                            {**model, "version": "2", "slot": "production", "protocol": "oip"},
                            "keel_requests_total",
                        ),
                        "values": "0+90x20",
                    },
                    {
                        "series": _series(
                            {**model, "status": "503", "rule": "not ready"},
                            "keel_request_errors_total",
                        ),
                        "values": "0+10x20",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "KeelFeatureDrift", "exp_alerts": []},
                    {
                        "eval_time": "6m",
                        "alertname": "KeelFeatureDrift",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    **{k: v for k, v in feature.items() if k != "test"},
                                    "test": "ks",
                                    "severity": "warning",
                                    "owner": "dana",
                                    "rule": "feature-drift",
                                    "signal": "drift",
                                    "source": "keel",
                                },
                                "exp_annotations": {
                                    "summary": f"{MODEL}: drift of feature inputs.distance "
                                    "is 0.3 (past its limit)",
                                    "description": "keel alert rule feature-drift: the drift "
                                    "statistic of a feature against the reference (drift of "
                                    f"feature inputs.distance) of model {MODEL} is 0.3 in the "
                                    "newest monitored window, past the signal's own limit (the "
                                    "test's threshold or keel's tolerance). `keel monitor "
                                    "--report FILE.html` shows the windows behind it.",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "2m",
                        "alertname": "KeelPredictionsStopped",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    **model,
                                    "severity": "critical",
                                    "owner": "mo",
                                    "rule": "predictions-stopped",
                                    "signal": "prediction_age",
                                    "source": "keel",
                                },
                                "exp_annotations": {
                                    "summary": f"{MODEL}: prediction_age is 2h 1m 40s (above 1h)",
                                    "description": "keel alert rule predictions-stopped: the "
                                    "seconds since the newest logged prediction "
                                    f"(prediction_age) of model {MODEL} is 2h 1m 40s in the "
                                    "newest monitored window, above the rule's threshold 1h. "
                                    "`keel monitor --report FILE.html` shows the windows "
                                    "behind it.",
                                },
                            }
                        ],
                    },
                    {"eval_time": "0m", "alertname": "KeelPredictionsStopped", "exp_alerts": []},
                    {"eval_time": "1m", "alertname": "KeelPerformance", "exp_alerts": []},
                    {
                        "eval_time": "3m",
                        "alertname": "KeelPerformance",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    **model,
                                    "version": "2",
                                    "metric": "roc_auc",
                                    "severity": "critical",
                                    "owner": "tom",
                                    "rule": "performance",
                                    "signal": "performance",
                                    "source": "keel",
                                },
                                "exp_annotations": {
                                    "summary": f"{MODEL}: performance roc_auc is 0.65 (below 0.7)",
                                    "description": "keel alert rule performance: the metric "
                                    "over predictions whose labels have arrived (performance "
                                    f"roc_auc) of model {MODEL} is 0.65 in the newest "
                                    "monitored window, below the rule's threshold 0.7. `keel "
                                    "monitor --report FILE.html` shows the windows behind it.",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "15m",
                        "alertname": "KeelServerErrors",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    **model,
                                    "severity": "critical",
                                    "owner": "release",  # no release owner in keel.yaml
                                    "source": "keel",
                                },
                                "exp_annotations": {
                                    "summary": f"{MODEL}: 10% of requests fail with a server error",
                                    "description": "keel serve answered more than 1% of "
                                    f"{MODEL}'s requests with a 5xx status over 5 minutes. "
                                    "Its log and `keel status` say why.",
                                },
                            }
                        ],
                    },
                ],
            },
            {
                # Served in production, and not one prediction for an hour.
                "interval": "5m",
                "input_series": [
                    {
                        "series": _series(
                            {**model, "version": "2", "slot": "production"}, "keel_model_served"
                        ),
                        "values": "1x30",
                    },
                    {
                        "series": _series(
                            {**model, "version": "2", "slot": "production"},
                            "keel_predictions_total",
                        ),
                        "values": "0+100x3 300x27",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "50m", "alertname": "KeelNoPredictions", "exp_alerts": []},
                    {
                        "eval_time": "80m",
                        "alertname": "KeelNoPredictions",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    **model,
                                    "severity": "warning",
                                    "owner": "mo",
                                    "source": "keel",
                                },
                                "exp_annotations": {
                                    "summary": f"{MODEL} is served but made no prediction for 1h",
                                    "description": f"keel serve serves {MODEL} in production "
                                    "and answered no prediction for 1h: callers stopped "
                                    "calling, or cannot reach it.",
                                },
                            }
                        ],
                    },
                ],
            },
        ],
    }
    (tmp_path / "keel.test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    ran = promtool("test", "rules", "keel.test.yml", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "SUCCESS" in ran.stdout


# --- Grafana ---------------------------------------------------------------------------------


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def _grafana_free(expr: str) -> str:
    """The query as Grafana sends it, for a range of 5 minutes and every model."""
    return expr.replace("$__rate_interval", "5m").replace("$model", ".*")


_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
     "unless", "offset", "inf", "nan"}
)  # fmt: skip


def _metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression reads: identifiers that are neither functions,
    keywords, label names (in braces or grouping clauses) nor inside strings."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group()
        following = text[match.end() :].lstrip()
        if following.startswith("(") or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def _exposed() -> set[str]:
    """Every sample name keel serve's /metrics can carry."""
    serving = ServingMetrics()
    serving.requests.labels("m", "1", "production", "oip").inc()
    serving.rows.labels("m", "1", "production").inc()
    serving.errors.labels("m", "400", "rule").inc()
    serving.latency.labels("m", "1", "production").observe(0.1)
    serving.served.labels("m", "1", "production").set(1)
    serving.load_failures.labels("m", "1").inc()
    serving.reloads.labels("m").inc()
    serving.shadow_dropped.labels("m").inc()
    names = {s.name for family in serving.registry.collect() for s in family.samples}
    return names | set(metric_names())


def test_dashboard_is_importable_json_with_the_expected_panels() -> None:
    dashboard = json.loads(json.dumps(grafana_dashboard()))
    assert dashboard["schemaVersion"] == 39
    assert dashboard["__inputs"][0]["name"] == "DS_PROMETHEUS"
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    titles = {p["title"] for p in dashboard["panels"] if p["type"] != "row"}
    assert {
        "Request rate",
        "Errors",
        "Latency p50 / p99",
        "Drift score per feature",
        "Null rates",
        "Performance",
        "Label coverage",
        "Open alerts",
        "Newest prediction / feedback age",
    } <= titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
    variable = dashboard["templating"]["list"][0]
    assert variable["name"] == "model" and variable["includeAll"]


#: `keel export grafana --title "flights-delay: serving and monitoring"`, written when the
#: dashboard was still built in Python: the template must render the same document.
DASHBOARD_BEFORE = Path(__file__).parent / "data" / "grafana-dashboard.json"


def test_keel_export_grafana_writes_the_same_dashboard_as_before(keel: Keel) -> None:
    result = keel("export", "grafana", "--title", "flights-delay: serving and monitoring")
    assert result.code == 0, result.err
    assert result.out == DASHBOARD_BEFORE.read_text(encoding="utf-8")
    default = json.loads(keel("export", "grafana").out)
    assert default["title"] == "keel: serving and monitoring"
    assert default | {"title": "flights-delay: serving and monitoring"} == json.loads(
        DASHBOARD_BEFORE.read_text(encoding="utf-8")
    )


def test_dashboard_is_a_grafana_json_template_shipped_with_keel() -> None:
    template = importlib.resources.files("keel.monitoring").joinpath("templates/grafana.json")
    document = json.loads(template.read_text(encoding="utf-8"))
    assert grafana_dashboard(title=document["title"]) == document
    # What Grafana's import (Dashboards > New > Import) reads of an exported dashboard.
    assert {
        "__inputs",
        "__requires",
        "uid",
        "title",
        "schemaVersion",
        "version",
        "time",
        "templating",
        "annotations",
        "panels",
    } <= document.keys()
    assert isinstance(document["schemaVersion"], int)
    inputs = {i["name"]: i for i in document["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    required = {(r["type"], r["id"]) for r in document["__requires"]}
    assert {("grafana", "grafana"), ("datasource", "prometheus")} <= required
    for panel in document["panels"]:
        assert {"id", "type", "title", "gridPos"} <= panel.keys()
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        if panel["type"] != "row":
            assert ("panel", panel["type"]) in required
            assert all({"refId", "expr", "datasource"} <= t.keys() for t in panel["targets"])
    # Every use of the datasource is the import's input, so one document fits any Grafana.
    assert "${DS_PROMETHEUS}" in template.read_text(encoding="utf-8")


def test_dashboard_queries_name_only_series_keel_exposes() -> None:
    exposed = _exposed()
    used = set()
    for expr in _expressions(grafana_dashboard()):
        names = _metric_names(_grafana_free(expr))
        assert names, expr
        used |= names
    assert used <= exposed, used - exposed
    assert {"keel_requests_total", "keel_request_seconds_bucket", "keel_drift_score"} <= used


def test_rules_name_only_series_keel_exposes() -> None:
    exposed = _exposed() | set()
    for rule in by_alert(rules_of(spec())).values():
        assert _metric_names(rule["expr"]) <= exposed, rule["expr"]


@needs_promtool
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    expressions = _expressions(grafana_dashboard())
    recording = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"keel:dashboard_query_{i}", "expr": _grafana_free(expr)}
                    for i, expr in enumerate(expressions)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(recording, sort_keys=False))
    checked = promtool("check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(expressions)} rules found" in checked.stdout


# --- the commands ----------------------------------------------------------------------------


def test_keel_export_writes_both_files(keel: Keel, tmp_path: Path) -> None:
    from keel.project import Project

    folder = tmp_path / "flights"
    Project.init(folder, env={"KEEL_USER": "ana"}).close()
    rules = tmp_path / "out" / "keel.rules.yml"
    result = keel("-C", folder, "export", "prometheus-rules", "-o", rules, "--json")
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["ok"] and summary["output"] == str(rules)
    document = yaml.safe_load(rules.read_text())
    assert summary["rules"] == sum(len(g["rules"]) for g in document["groups"])
    assert rules.read_text().startswith("# Prometheus alerting rules generated by")
    if PROMTOOL is not None:
        assert promtool("check", "rules", rules).returncode == 0

    printed = keel("-C", folder, "export", "prometheus-rules")
    assert printed.code == 0 and yaml.safe_load(printed.out) == document

    dashboard = tmp_path / "out" / "keel.dashboard.json"
    result = keel("export", "grafana", "-o", dashboard)  # no project needed
    assert result.code == 0, result.err
    assert json.loads(dashboard.read_text())["uid"] == "keel-monitoring"
    assert "panels" in result.err
    assert json.loads(keel("export", "grafana").out)["schemaVersion"] == 39


def test_keel_export_prometheus_rules_needs_a_project(keel: Keel) -> None:
    result = keel("export", "prometheus-rules")
    assert result.code != 0
    assert "keel.yaml" in result.err
