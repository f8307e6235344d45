"""keel.yaml: valid specs load; every invalid one names the key path and the rule."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from keel.errors import ConfigError
from keel.scaffold import render_spec
from keel.spec import MetricThresholdGate, SqlSource, load_spec, parse_spec

FULL = """
version: 1
name: flights-delay
owners: {data: ana, training: ben, release: cy, monitoring: di}
storage: {db_url: "sqlite:///meta.db", artifacts: store}
data:
  source: data/*.csv.gz
  timestamp: time_hour
  target: late
  entity_key: flight_id
  contract: contracts/flights.yaml
features: {entry_point: "features:build"}
training:
  entry_point: "train:train"
  params: {max_depth: 6}
  split: {method: random, holdout: 0.25, seed: 7}
metrics: [roc_auc, {name: late_share, greater_is_better: false}]
release:
  aliases: [staging, canary, production, challenger]
  gates:
    - {type: metric_threshold, metric: roc_auc, min: 0.7}
    - {type: beats_champion, metric: roc_auc, margin: 0.01, relative: true}
    - {type: contract_passed}
    - {type: inference_contract}
  approvals: {required: 2, roles: [release]}
  request_ttl: 3d
monitoring: {window: 6h, drift: {test: psi, threshold: 0.2}}
retraining:
  triggers: {drifted_features: 3, performance: {metric: roc_auc, below: 0.65}, schedule: 7d}
  promotion: canary
  canary: {duration: 2h}
serving: {canary_share: 0.2, shadow: [challenger], log: {flush_interval: 100ms}}
"""


def test_full_spec_loads_with_types() -> None:
    spec = parse_spec(FULL)
    assert spec.name == "flights-delay"
    assert spec.data is not None and spec.data.entity_key == ["flight_id"]
    assert isinstance(spec.release.gates[0], MetricThresholdGate)
    assert spec.release.request_ttl == timedelta(days=3)
    assert spec.monitoring.window == timedelta(hours=6)
    assert spec.retraining.canary.duration == timedelta(hours=2)
    assert spec.primary_metric is not None and spec.primary_metric.name == "roc_auc"
    assert spec.metrics[1].higher_is_better is False
    assert spec.owners.missing() == []
    assert spec.release.declared_aliases == (
        "candidate",
        "staging",
        "canary",
        "production",
        "challenger",
    )


def test_sql_source() -> None:
    spec = parse_spec("name: x\ndata: {source: {query: 'SELECT 1', url: 'sqlite://'}}\n")
    assert spec.data is not None and isinstance(spec.data.source, SqlSource)


def test_minimal_spec_gets_defaults() -> None:
    spec = parse_spec("name: tiny\n")
    assert spec.data is None
    assert spec.release.approvals.required == 1
    assert spec.owners.missing() == ["data", "training", "release", "monitoring"]


@pytest.mark.parametrize(
    ("text", "key", "rule"),
    [
        ("name: x\nrelease:\n  gates: 12\n", "release.gates", "expected a list, got 12"),
        ("name: x\nrelease: {gatez: []}\n", "release.gatez", "unknown key; did you mean 'gates'?"),
        ("nam: x\n", "name", "required key is missing"),
        ("name: x\nowners: {trainin: bob}\n", "owners.trainin", "did you mean 'training'"),
        ("name: Bad Name\n", "name", "expected lowercase letters"),
        ("name: x\nmonitoring: {window: 1y}\n", "monitoring.window", "expected a duration"),
        ("name: x\nmonitoring: {window: -5s}\n", "monitoring.window", "expected a duration"),
        (
            "name: x\nmonitoring: {drift: {threshold: 0.2}}\n",
            "monitoring.drift",
            "threshold needs a test",
        ),
        (
            "name: x\nmonitoring:\n  alerts:\n    - {name: a, signal: drift}\n"
            "    - {name: a, signal: schema}\n",
            "monitoring.alerts",
            "rule names must be unique; repeated: a",
        ),
        (
            "name: x\nmonitoring: {alerts: [{name: a, signal: drfit}]}\n",
            "monitoring.alerts[0].signal",
            "drift",
        ),
        ("name: x\ndata: {source: 12}\n", "data.source", "expected a path, glob or folder"),
        ("name: x\ndata: {source: ''}\n", "data.source", "got an empty string"),
        ("name: x\ntraining: {entry_point: train}\n", "training.entry_point", "module:function"),
        (
            "name: x\nserving: {canary_share: 2}\n",
            "serving.canary_share",
            "expected a value at most 1.0",
        ),
        ("name: x\nrelease: {gates: [{type: nope}]}\n", "release.gates[0]", "unknown type 'nope'"),
        ("name: x\nrelease: {gates: [{metric: a}]}\n", "release.gates[0]", "missing key 'type'"),
        (
            "name: x\nrelease: {gates: [{type: metric_threshold, metric: a}]}\n",
            "release.gates[0]",
            "give min, max or both",
        ),
        (
            "name: x\nrelease: {gates: [{type: metric_threshold, metric: a, min: abc}]}\n",
            "release.gates[0].min",
            "expected a number, got 'abc'",
        ),
        (
            "name: x\nmetrics: [roc_auc]\nrelease: {gates: [{type: beats_champion, metric: f1}]}\n",
            "release.gates[0].metric",
            "'f1' is not in metrics",
        ),
        ("name: x\nmetrics: [roc_auc, wat]\n", "metrics[1]", "unknown metric 'wat'"),
        ("name: x\nmetrics: [mae, mae]\n", "metrics", "listed more than once: mae"),
        ("version: 9\nname: x\n", "version", "upgrade keelml"),
        (
            "name: x\nrelease: {approvals: {required: -1}}\n",
            "release.approvals.required",
            "at least 0",
        ),
        ("name: x\nmonitoring: {prometheus: maybe}\n", "monitoring.prometheus", "true or false"),
    ],
)
def test_invalid_spec_names_key_path_and_rule(text: str, key: str, rule: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec(text)
    problems = dict(caught.value.problems)
    assert key in problems, caught.value.problems
    assert rule in problems[key]
    assert f"{key}: " in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec("name: X\nrelease: {gates: 1}\nmonitoring: {window: soon}\n")
    assert {key for key, _ in caught.value.problems} == {
        "name",
        "release.gates",
        "monitoring.window",
    }
    assert "3 problems" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: x\nname: y\n", "duplicate key 'name'"),
        ("name: [x\n", "not valid YAML at line 2"),
        ("- a\n- b\n", "expected a mapping of sections, got a list"),
        ("just text\n", "expected a mapping of sections, got 'just text'"),
        ("name: x\n\tbad: tab\n", "not valid YAML"),
    ],
)
def test_malformed_yaml_is_a_config_error(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[")):
        parse_spec(text)


def test_empty_file_says_name_is_missing() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec("")
    assert caught.value.problems == [("name", "required key is missing")]


def test_load_spec_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_spec(tmp_path / "keel.yaml")
    binary = tmp_path / "keel.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_spec(binary)


def test_scaffold_template_is_valid_and_commented() -> None:
    text = render_spec("demo", "ana")
    spec = parse_spec(text)
    assert spec.name == "demo"
    assert spec.owners.release == "ana"
    assert text.count("#") > 20  # the template explains itself


def test_scaffold_quotes_odd_user_names() -> None:
    spec = parse_spec(render_spec("demo", 'Ana "the owner": x'))
    assert spec.owners.data == 'Ana "the owner": x'


def test_aliases_default_to_the_usual_four() -> None:
    spec = parse_spec("name: tiny\n")
    assert spec.release.declared_aliases == ("candidate", "staging", "canary", "production")
    # candidate is built in, declared or not
    declared = parse_spec("name: x\nrelease: {aliases: [production]}\n").release
    assert declared.declared_aliases == ("candidate", "production")


@pytest.mark.parametrize(
    ("release", "rest", "key"),
    [
        ("{approvals: {aliases: [prod]}}", "", "release.approvals.aliases"),
        (
            "{gates: [{type: contract_passed, aliases: [prod]}]}",
            "",
            "release.gates[0].aliases",
        ),
        (
            "{gates: [{type: beats_champion, metric: roc_auc, alias: prod}]}",
            "metrics: [roc_auc]\n",
            "release.gates[0].alias",
        ),
        ("{}", "serving: {shadow: [challenger]}\n", "serving.shadow"),
        (
            "{aliases: [production]}",
            "retraining: {promotion: canary}\n",
            "retraining.promotion",
        ),
        (
            "{aliases: [canary], approvals: {aliases: []}}",
            "retraining: {promotion: canary}\n",
            "retraining.promotion",
        ),
        (
            "{aliases: [staging], approvals: {aliases: []}}",
            "retraining: {triggers: {new_labels: 10}}\n",
            "retraining.promotion",
        ),
    ],
)
def test_aliases_named_anywhere_must_be_declared(release: str, rest: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_spec(f"name: x\nrelease: {release}\n{rest}")
    [(problem_key, rule)] = raised.value.problems
    assert problem_key == key
    assert "is not declared in release.aliases" in rule


@pytest.mark.parametrize(
    ("aliases", "rule"),
    [
        ("[Prod]", "expected lowercase letters"),
        ("[latest]", "not 'latest'"),
        ("[canary, canary]", "listed more than once: canary"),
    ],
)
def test_declared_alias_names_follow_the_rule(aliases: str, rule: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_spec(f"name: x\nrelease: {{aliases: {aliases}}}\n")
    [(key, message)] = raised.value.problems
    assert key.startswith("release.aliases") and rule in message
