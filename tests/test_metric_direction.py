"""One definition of a metric's direction, and every place that compares agrees with it.

For every metric keel knows, and metrics of the user's own declared in both directions, a
challenger that is better (or worse) than its champion must be judged so by the release
gate, the retraining decision, canary analysis, alert rules, retraining triggers, and the
performance chart must say which way is better. `rmse` read as "higher is better" once kept
a worse champion and wrote that decision into the audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from keel.domain.metric import KNOWN_METRICS, METRICS, breaches, improvement, is_better
from keel.domain.monitoring import MonitorMetric, Signal
from keel.domain.release import EvaluationEvidence, ReleaseEvidence
from keel.errors import ConfigError
from keel.monitoring.alerts import _breaches, _message, effective_rules
from keel.release.policy import evaluate_gates
from keel.retraining.canary.analysis import _metric
from keel.retraining.canary.criteria import SlotSummary
from keel.retraining.canary.criteria import performance as _performance
from keel.retraining.service import Comparison
from keel.retraining.triggers import evaluate_triggers
from keel.spec import BeatsChampionGate, ProjectSpec, parse_spec
from keel.web.pages import _performance_chart

#: (metric, higher is better, declared in keel.yaml as)
CASES: list[tuple[str, bool, Any]] = [
    (name, higher, name) for name, higher in KNOWN_METRICS.items()
]
CASES += [
    ("cost", False, {"name": "cost", "greater_is_better": False}),
    ("revenue", True, {"name": "revenue", "greater_is_better": True}),
]
IDS = [case[0] for case in CASES]
THRESHOLD = 0.7
START = datetime(2026, 1, 1, tzinfo=UTC)


def _values(higher: bool, challenger_better: bool) -> tuple[float, float]:
    """(challenger, champion): 0.8 and 0.6, the better one first when it should be."""
    good, bad = (0.8, 0.6) if higher else (0.6, 0.8)
    return (good, bad) if challenger_better else (bad, good)


def _spec(declared: Any, **sections: Any) -> ProjectSpec:
    import yaml

    return parse_spec(yaml.safe_dump({"name": "m", "metrics": [declared], **sections}))


def test_every_known_metric_has_one_definition() -> None:
    assert set(KNOWN_METRICS) == set(METRICS)
    assert KNOWN_METRICS["rmse"] is False and KNOWN_METRICS["roc_auc"] is True
    from keel.metrics import NEEDS_SCORES

    assert {name for name, m in METRICS.items() if m.needs == "score"} == NEEDS_SCORES


@pytest.mark.parametrize("challenger_better", [True, False], ids=["better", "worse"])
@pytest.mark.parametrize(("name", "higher", "declared"), CASES, ids=IDS)
def test_each_comparing_place_agrees(
    name: str, higher: bool, declared: Any, challenger_better: bool
) -> None:
    challenger, champion = _values(higher, challenger_better)
    spec = _spec(declared)
    assert spec.metrics[0].higher_is_better is higher
    assert is_better(challenger, champion, higher_is_better=higher) is challenger_better
    assert (improvement(challenger, champion, higher_is_better=higher) > 0) is challenger_better

    # the release gate
    evidence = ReleaseEvidence(
        "m",
        2,
        "production",
        1,
        EvaluationEvidence({"rows": 100}, {name: challenger}, 1, {name: champion}),
    )
    gate = BeatsChampionGate(type="beats_champion", metric=name)
    [result] = evaluate_gates([gate], evidence, spec.metrics)
    assert result.passed is challenger_better, result.reason

    # the retraining decision
    comparison = Comparison.judge(
        name,
        spec.metrics,
        champion=(1, champion),
        challenger=(2, challenger),
        needed=0.0,
        rows=100,
    )
    assert comparison.passed is challenger_better
    assert comparison.to_dict()["direction"] == (
        "higher is better" if higher else "lower is better"
    )

    # canary analysis (keel computes only its own metrics from labels)
    if name in METRICS:
        metric = _metric(SimpleNamespace(spec=spec))  # type: ignore[arg-type]
        assert metric == (name, higher)
        canary = SlotSummary("canary", 2, 300, 300, 1.0, 2.0, 300, challenger)
        production = SlotSummary("production", 1, 300, 300, 1.0, 2.0, 300, champion)
        criterion = _performance(canary, production, metric, 0.0)
        assert criterion.judged and criterion.breached is not challenger_better


@pytest.mark.parametrize("worse", [True, False], ids=["worse", "fine"])
@pytest.mark.parametrize(("name", "higher", "declared"), CASES, ids=IDS)
def test_alert_rules_and_triggers_fire_on_the_worse_side(
    name: str, higher: bool, declared: Any, worse: bool
) -> None:
    value = (THRESHOLD - 0.1 if higher else THRESHOLD + 0.1) if worse else THRESHOLD
    side = "below" if higher else "above"
    assert breaches(value, THRESHOLD, higher_is_better=higher) is worse
    trigger = {"metric": name, side: THRESHOLD}
    # A rule that names no direction fires on its metric's worse side; the default rule
    # keel derives from the trigger too.
    rule = {"name": "perf", "signal": "performance", "subject": name, "threshold": THRESHOLD}
    for spec in (
        _spec(declared, monitoring={"alerts": [rule]}),
        _spec(declared, retraining={"triggers": {"performance": trigger}}),
    ):
        [performance] = [r for r in effective_rules(spec) if r.signal == "performance"]
        assert performance.direction == side
        signal = Signal("performance", name, value)
        assert _breaches(performance, signal, spec) is worse
        if worse:
            assert f"{side} {THRESHOLD:g}" in _message(performance, signal, 1, spec)
    # the retraining trigger, reading what monitoring stored
    spec = _spec(declared, retraining={"triggers": {"performance": trigger}})
    stored = MonitorMetric("m", 1, START, START + timedelta(days=1), "performance", name, value)
    monitoring = SimpleNamespace(metrics=lambda *a, **k: [stored])
    releases = SimpleNamespace(holder=lambda *a: None)
    project = SimpleNamespace(
        spec=spec, metadata=SimpleNamespace(monitoring=monitoring, releases=releases)
    )
    [fired] = evaluate_triggers(project, "m")  # type: ignore[arg-type]
    assert fired.fired is worse, fired.reason
    assert ("lower is better" if not higher else "higher is better") in fired.reason


@pytest.mark.parametrize(("name", "higher", "declared"), CASES, ids=IDS)
def test_the_performance_chart_says_which_way_is_better(
    name: str, higher: bool, declared: Any
) -> None:
    spec = _spec(declared)
    stored = [
        MonitorMetric(
            "m",
            1,
            START + timedelta(days=d),
            START + timedelta(days=d + 1),
            "performance",
            name,
            0.5 + d / 10,
        )
        for d in range(3)
    ]
    chart, _, _ = _performance_chart(stored, {}, spec)
    words = "higher is better" if higher else "lower is better"
    assert f"{name} ({words})" in str(chart)


@pytest.mark.parametrize(("name", "higher"), list(KNOWN_METRICS.items()))
def test_a_threshold_on_the_wrong_side_is_refused_naming_the_key(name: str, higher: bool) -> None:
    wrong = "above" if higher else "below"
    with pytest.raises(ConfigError) as caught:
        _spec(name, retraining={"triggers": {"performance": {"metric": name, wrong: 0.5}}})
    key = f"retraining.triggers.performance.{wrong}"
    [(path, rule)] = caught.value.problems
    assert path == key and f"use {'below' if higher else 'above'}" in rule
    rule_spec = {
        "name": "perf",
        "signal": "performance",
        "subject": name,
        "threshold": 0.5,
        "direction": wrong,
    }
    with pytest.raises(ConfigError) as caught:
        _spec(name, monitoring={"alerts": [rule_spec]})
    [(path, rule)] = caught.value.problems
    assert path == "monitoring.alerts[0].direction" and name in rule


def test_a_trigger_needs_exactly_one_threshold() -> None:
    for trigger in ({"metric": "rmse"}, {"metric": "rmse", "above": 1, "below": 2}):
        with pytest.raises(ConfigError) as caught:
            _spec("rmse", retraining={"triggers": {"performance": trigger}})
        [(path, rule)] = caught.value.problems
        assert path == "retraining.triggers.performance" and "exactly one" in rule
