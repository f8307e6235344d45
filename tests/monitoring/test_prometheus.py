"""The monitoring collector on a real store: what `keel monitor` recorded, as Prometheus series,
in a registry of its own and on a real `keel serve`'s /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from keel.domain.monitoring import AlertDraft, MonitorMetric
from keel.monitoring.prometheus import MonitoringCollector, metric_names
from keel.project import Project
from tests.serving.support import MODEL as SERVED_MODEL
from tests.serving.support import Client, metric, open_project, serve, serve_process, set_alias

ENV = {"KEEL_USER": "ana"}
MODEL = "flights-delay"
DAY = timedelta(days=1)
T0 = datetime(2013, 12, 1, tzinfo=UTC)


def _window(day: int, version: int, model: str = MODEL) -> list[MonitorMetric]:
    """The signals of day `day` of December, as the monitor stores them."""
    start, end = T0 + day * DAY, T0 + (day + 1) * DAY

    def m(signal: str, subject: str, value: float | None, **detail: object) -> MonitorMetric:
        return MonitorMetric(model, version, start, end, signal, subject, value, detail)

    distance = 0.05 + 0.1 * day  # drifts more every day
    return [
        m("drift", "inputs.distance", distance, test="ks", breached=distance > 0.2, limit=0.05),
        m("drift", "inputs.carrier", 0.01, test="psi", breached=False, limit=0.2),
        m("score_drift", "outputs.probability", 0.3, test="ks", breached=True, limit=0.05),
        m("null_rate", "inputs.dep_time", 0.02 * day, breached=False, limit=0.05),
        m("null_rate_change", "inputs.dep_time", 0.01, breached=False, limit=0.05),
        m("performance", "roc_auc", 0.8 - 0.01 * day, breached=False),
        m("performance", "log_loss", None),  # no labels for it: no sample
        m("label_coverage", "", 0.5, breached=False),
        m("volume", "", 1.1, breached=False),
    ]


def _freshness(at: datetime, version: int, model: str = MODEL) -> list[MonitorMetric]:
    return [
        MonitorMetric(model, version, at, at, "prediction_age", "", 120.0, {"breached": False}),
        MonitorMetric(model, version, at, at, "feedback_age", "", 7200.0, {"breached": True}),
    ]


def _draft(rule: str, subject: str, severity: str, owner: str | None) -> AlertDraft:
    return AlertDraft(
        model=MODEL,
        rule=rule,
        signal="drift",
        subject=subject,
        severity=severity,  # type: ignore[arg-type]
        message=f"{subject} drifted",
        owner=owner,
        version=2,
        value=0.3,
        threshold=0.05,
    )


def _record(project: Project) -> None:
    monitoring = project.metadata.monitoring
    # v1 monitored for three days, then v2 replaced it in production for two.
    for day in range(3):
        monitoring.record_metrics(_window(day, 1))
    for day in range(3, 5):
        monitoring.record_metrics(_window(day, 2))
    monitoring.record_metrics(_freshness(T0 + 5 * DAY, 2))
    monitoring.record_metrics(_window(0, 1, model="other"))
    at = T0 + 5 * DAY
    monitoring.raise_alert(
        _draft("feature-drift", "inputs.distance", "warning", "dana"), at=at, actor="ana"
    )
    monitoring.raise_alert(
        _draft("score-drift", "outputs.probability", "critical", None), at=at, actor="ana"
    )
    resolved, _ = monitoring.raise_alert(
        _draft("feature-drift", "inputs.carrier", "warning", "dana"), at=at, actor="ana"
    )
    monitoring.resolve_alert(resolved.id, at=at, actor="ana", reason="cleared")


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with Project.init(tmp_path / "p", env=ENV) as project:
        _record(project)
        yield project


def _scrape(collector: MonitoringCollector) -> str:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    return generate_latest(registry).decode()


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_the_newest_window_of_every_signal_becomes_a_series(project: Project) -> None:
    text = _scrape(MonitoringCollector(project))

    assert metric(text, "keel_monitoring_up") == 1
    drift = _samples(text, "keel_drift_score")
    # The newest window (day 4, v2) only: v1's values are no longer exposed.
    assert drift[
        (("feature", "inputs.distance"), ("model", MODEL), ("test", "ks"), ("version", "2"))
    ] == pytest.approx(0.45)
    assert metric(text, "keel_drift_score", model=MODEL, version="1") == 0
    assert metric(text, "keel_feature_drifted", model=MODEL, feature="inputs.distance") == 1
    assert metric(text, "keel_feature_drifted", model=MODEL, feature="inputs.carrier") == 0
    assert metric(text, "keel_score_drift", model=MODEL, output="outputs.probability") == 0.3
    assert metric(text, "keel_null_rate", model=MODEL, feature="inputs.dep_time") == 0.08
    assert metric(text, "keel_performance", model=MODEL, metric="roc_auc", version="2") == 0.76
    assert not _samples(text, "keel_performance").keys() & {
        (("metric", "log_loss"), ("model", MODEL), ("version", "2"))
    }
    assert metric(text, "keel_label_coverage", model=MODEL, version="2") == 0.5
    assert metric(text, "keel_prediction_age_seconds", model=MODEL) == 120
    assert metric(text, "keel_feedback_age_seconds", model=MODEL) == 7200
    assert [dict(labels) for labels in _samples(text, "keel_prediction_age_seconds")] == [
        {"model": MODEL}
    ]
    # Signals without a series of their own, and every verdict.
    assert metric(text, "keel_monitor_signal", signal="volume", model=MODEL) == 1.1
    assert metric(text, "keel_monitor_signal", signal="null_rate_change", model=MODEL) == 0.01
    assert metric(text, "keel_signal_breached", signal="feedback_age", model=MODEL) == 1
    assert metric(text, "keel_signal_breached", signal="drift", subject="inputs.carrier") == 0
    # The other model has its own series.
    assert metric(text, "keel_drift_score", model="other", feature="inputs.distance") == 0.05
    assert metric(text, "keel_monitor_last_run_timestamp_seconds", model="other") > 0


def test_open_alerts_are_exposed_with_owner_and_counted_by_severity(project: Project) -> None:
    text = _scrape(MonitoringCollector(project))

    alerts = _samples(text, "keel_alert_open")
    assert alerts == {
        (
            ("model", MODEL),
            ("owner", "dana"),
            ("rule", "feature-drift"),
            ("severity", "warning"),
            ("subject", "inputs.distance"),
        ): 1.0,
        (
            ("model", MODEL),
            ("owner", ""),
            ("rule", "score-drift"),
            ("severity", "critical"),
            ("subject", "outputs.probability"),
        ): 1.0,
    }
    assert metric(text, "keel_alerts_open", model=MODEL, severity="warning") == 1
    assert metric(text, "keel_alerts_open", model=MODEL, severity="critical") == 1
    assert metric(text, "keel_alerts_open", model=MODEL, severity="info") == 0
    assert (("model", "other"), ("severity", "info")) in _samples(text, "keel_alerts_open")


def test_scrapes_are_cached(project: Project) -> None:
    collector = MonitoringCollector(project, cache_seconds=3600)
    before = _scrape(collector)
    project.metadata.monitoring.record_metrics(_window(9, 2))
    assert _scrape(collector) == before
    fresh = _scrape(MonitoringCollector(project, cache_seconds=0))
    assert metric(fresh, "keel_drift_score", feature="inputs.distance", model=MODEL) == (
        pytest.approx(0.95)
    )


def test_a_failing_store_never_fails_the_scrape(tmp_path: Path) -> None:
    class Broken:
        @property
        def metadata(self) -> object:
            raise OSError("database is locked")

    collector = MonitoringCollector(Broken(), cache_seconds=0)  # type: ignore[arg-type]
    text = _scrape(collector)
    assert metric(text, "keel_monitoring_up") == 0
    assert [f.name for f in text_string_to_metric_families(text)] == ["keel_monitoring_up"]


def test_registering_reads_nothing_and_names_every_series() -> None:
    class Untouchable:
        @property
        def metadata(self) -> object:
            raise AssertionError("the store was read at registration")

    registry = CollectorRegistry(auto_describe=True)
    registry.register(MonitoringCollector(Untouchable()))  # type: ignore[arg-type]
    assert "keel_drift_score" in metric_names()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_serving_app_exposes_them_unless_keel_yaml_says_not(
    tmp_path: Path, enabled: bool
) -> None:
    folder = tmp_path / "p"
    Project.init(folder, env=ENV).close()
    if not enabled:
        spec = folder / "keel.yaml"
        spec.write_text(spec.read_text().replace("prometheus: true", "prometheus: false"))
    with Project.open(folder, env=ENV) as project:
        assert project.spec.monitoring.prometheus is enabled
        _record(project)
        with serve(project) as (url, _app), Client(url) as client:
            answer = client.get("/metrics")
    assert answer.status == 200
    families = {f.name for f in text_string_to_metric_families(answer.text)}
    assert ("keel_monitoring_up" in families) is enabled
    assert ("keel_drift_score" in families) is enabled
    assert "keel_request_seconds" in families  # serving's own, either way


@pytest.mark.slow
def test_keel_serve_metrics_carry_the_monitoring_series(
    trained_template: Path, tmp_path: Path
) -> None:
    import shutil

    folder = tmp_path / "flights"
    shutil.copytree(trained_template, folder)
    with open_project(folder) as served:
        set_alias(served, "production", 1)
        assert SERVED_MODEL == MODEL
        _record(served)
    with serve_process(folder, tmp_path / "serve.err") as (url, _process), Client(url) as client:
        answer = client.get("/metrics")
    assert answer.status == 200, answer.text
    text = answer.text
    assert metric(text, "keel_monitoring_up") == 1
    assert metric(text, "keel_drift_score", model=MODEL, feature="inputs.distance") == 0.45
    assert metric(text, "keel_alert_open", model=MODEL, rule="feature-drift", owner="dana") == 1
    assert metric(text, "keel_model_served", model=MODEL, slot="production") == 1  # serving's own
