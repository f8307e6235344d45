"""Monitoring's signals as Prometheus series: a collector that reads the metadata store on scrape.

`keel serve` registers a `MonitoringCollector` on its `/metrics` registry (unless keel.yaml says
`monitoring.prometheus: false`), so one scrape carries serving health and what `keel monitor`
found. The collector reads the newest stored window of every (model, signal, subject) and the
open alerts, keeps the result for `cache_seconds` (a scrape every few seconds costs two queries
at most that often), and never fails a scrape: when the store cannot be read it exposes only
`keel_monitoring_up 0`.

Stored signals (names of `keel.domain.monitoring.SIGNALS`) map to series as follows; labels
`model` and `version` are the model and version whose window was monitored:

| signal                       | series                                     | other labels        |
| ---------------------------- | ------------------------------------------ | ------------------- |
| drift                        | keel_drift_score                           | feature, test       |
| drift (breached or not)      | keel_feature_drifted (0/1)                 | feature, test       |
| score_drift                  | keel_score_drift                           | output, test        |
| null_rate                    | keel_null_rate                             | feature             |
| performance                  | keel_performance                           | metric              |
| label_coverage               | keel_label_coverage                        |                     |
| prediction_age               | keel_prediction_age_seconds (no version)   |                     |
| feedback_age                 | keel_feedback_age_seconds (no version)     |                     |
| data_age                     | keel_data_age_seconds (no version)         |                     |
| every other signal           | keel_monitor_signal                        | signal, subject     |
| every signal (breached?)     | keel_signal_breached (0/1)                 | signal, subject     |

`keel_signal_breached` says whether the signal breached its own limit in that window (a drift
test's threshold, the null-rate tolerance): exported rules without a threshold use it.
and, from the alerts and runs: `keel_alert_open{model,rule,subject,severity,owner}` (1 per open
alert), `keel_alerts_open{model,severity}` (their count, 0 included for every severity),
`keel_monitor_last_run_timestamp_seconds{model}` (when the newest window was recorded) and
`keel_monitoring_up` (1 when the store answered).

Ages are as measured when the monitor last ran (`keel_monitor_last_run_timestamp_seconds`
says when): the monitor sees the prediction log, the serving process only its own traffic.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from keel.domain.monitoring import SEVERITIES, Alert, MonitorMetric
from keel.metadata.outage import Outage

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from keel.metadata.base import MetadataStore
    from keel.workspace import Workspace

__all__ = [
    "SERIES",
    "MonitoringCollector",
    "Series",
    "families",
    "metric_names",
    "series_for",
    "subject_label",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Series:
    """A Prometheus gauge that carries a stored signal, and the label its subject goes in."""

    name: str
    help: str
    subject_label: str | None  # None: the signal is about the model as a whole
    versioned: bool = True  # False: one value per model, whichever version served


#: Signal name -> the series it is exposed as. Other signals go to `keel_monitor_signal`.
SERIES: Final[dict[str, Series]] = {
    "drift": Series(
        "keel_drift_score",
        "Drift statistic of a feature in the newest monitored window against the reference.",
        "feature",
    ),
    "score_drift": Series(
        "keel_score_drift",
        "Drift statistic of a model output in the newest monitored window.",
        "output",
    ),
    "null_rate": Series(
        "keel_null_rate", "Share of missing values of a feature in the newest window.", "feature"
    ),
    "performance": Series(
        "keel_performance",
        "Performance over the newest window's labelled predictions, by metric.",
        "metric",
    ),
    "label_coverage": Series(
        "keel_label_coverage", "Share of the newest window's predictions that have a label.", None
    ),
    "prediction_age": Series(
        "keel_prediction_age_seconds",
        "Seconds since the newest logged prediction, when the monitor last ran.",
        None,
        versioned=False,
    ),
    "feedback_age": Series(
        "keel_feedback_age_seconds",
        "Seconds since the newest feedback arrived, when the monitor last ran.",
        None,
        versioned=False,
    ),
    "data_age": Series(
        "keel_data_age_seconds",
        "Seconds between the monitor's run and the data source's newest row.",
        None,
        versioned=False,
    ),
}
_GENERIC: Final = Series(
    "keel_monitor_signal", "Any other monitoring signal of the newest window.", "subject"
)
_DRIFTED: Final = "keel_feature_drifted"
_BREACHED: Final = "keel_signal_breached"
_ALERT_OPEN: Final = "keel_alert_open"
_ALERTS_OPEN: Final = "keel_alerts_open"
_LAST_RUN: Final = "keel_monitor_last_run_timestamp_seconds"
_UP: Final = "keel_monitoring_up"
_ALERTS_LIMIT: Final = 10_000


def series_for(signal: str) -> tuple[str, dict[str, str]]:
    """The series a signal is exposed as, with the labels that select it (`signal` for the
    generic series): ("keel_null_rate", {}), ("keel_monitor_signal", {"signal": "volume"})."""
    if signal in SERIES:
        return SERIES[signal].name, {}
    return _GENERIC.name, {"signal": signal}


def subject_label(signal: str) -> str | None:
    """The label that carries a signal's subject in its series (None: it has no subject)."""
    return SERIES[signal].subject_label if signal in SERIES else _GENERIC.subject_label


def metric_names() -> list[str]:
    """Every series name the collector can expose (without `_total` or bucket suffixes)."""
    names = {s.name for s in SERIES.values()}
    names |= {_GENERIC.name, _DRIFTED, _BREACHED, _ALERT_OPEN, _ALERTS_OPEN, _LAST_RUN, _UP}
    return sorted(names)


class MonitoringCollector(Collector):
    """Reads the newest monitoring signals and open alerts from the metadata store on scrape.

    `project_or_store` is a `Workspace` (its store is opened on first scrape) or a
    `MetadataStore`. Results are cached for `cache_seconds`; store errors are logged and
    exposed as `keel_monitoring_up 0`, never raised into the scrape.
    """

    def __init__(self, project_or_store: Workspace | MetadataStore, *, cache_seconds: float = 15):
        self._source = project_or_store
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: list[Metric] | None = None
        self._cached_at = -math.inf
        self._outage = Outage("Prometheus scrapes of monitoring metrics", "keel_monitoring_up is 0")

    def describe(self) -> Iterable[Metric]:
        # Names only: registering must not query the store (auto_describe would collect).
        return [GaugeMetricFamily(name, "") for name in metric_names()]

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached_at >= self._cache_seconds:
                self._cached = self._read()
                self._cached_at = now
            return list(self._cached)

    def _store(self) -> MetadataStore:
        from keel.metadata.base import MetadataStore

        if isinstance(self._source, MetadataStore):
            return self._source
        return self._source.metadata

    def _read(self) -> list[Metric]:
        try:
            monitoring = self._store().monitoring
            latest = monitoring.latest_metrics()
            open_alerts = monitoring.alerts(state="open", limit=_ALERTS_LIMIT)
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the store did
            self._outage.failed(exc)
            return [GaugeMetricFamily(_UP, "1 when the metadata store answered the scrape.", 0)]
        self._outage.recovered()
        return [
            *families(latest, open_alerts),
            GaugeMetricFamily(_UP, "1 when the metadata store answered the scrape.", 1),
        ]


def _newest(metrics: Iterable[MonitorMetric]) -> list[MonitorMetric]:
    """Per (model, signal, subject), the value of the newest window, whichever version it was:
    a version replaced in production stops being exposed once its successor is monitored."""
    chosen: dict[tuple[str, str, str], MonitorMetric] = {}
    for metric in metrics:
        key = (metric.model, metric.signal, metric.subject)
        held = chosen.get(key)
        if held is None or (metric.window_end, metric.version) > (held.window_end, held.version):
            chosen[key] = metric
    return sorted(chosen.values(), key=lambda m: (m.model, m.signal, m.subject))


def _drifted(metric: MonitorMetric) -> bool | None:
    for key in ("breached", "drifted"):
        flag = metric.detail.get(key)
        if isinstance(flag, bool):
            return flag
    return None


def families(metrics: Sequence[MonitorMetric], open_alerts: Sequence[Alert]) -> Iterator[Metric]:
    """The gauge families for stored metrics (any versions and windows) and open alerts."""
    newest = _newest(metrics)
    gauges: dict[str, GaugeMetricFamily] = {}

    def gauge(series: Series, labels: Sequence[str]) -> GaugeMetricFamily:
        if series.name not in gauges:
            gauges[series.name] = GaugeMetricFamily(series.name, series.help, labels=labels)
        return gauges[series.name]

    drifted = GaugeMetricFamily(
        _DRIFTED,
        "1 when the feature's drift test fired in the newest monitored window, else 0.",
        labels=("model", "version", "feature", "test"),
    )
    breached = GaugeMetricFamily(
        _BREACHED,
        "1 when the signal breached its own limit in the newest monitored window, else 0.",
        labels=("model", "version", "signal", "subject"),
    )
    last_run: dict[str, float] = {}
    for metric in newest:
        recorded = metric.recorded_at or metric.window_end
        last_run[metric.model] = max(last_run.get(metric.model, 0.0), recorded.timestamp())
        flag = _drifted(metric)
        if flag is not None:
            breached.add_metric(
                [metric.model, str(metric.version), metric.signal, metric.subject],
                1.0 if flag else 0.0,
            )
        if metric.value is None or not math.isfinite(metric.value):
            continue  # not measurable in this window (no labels yet, all nulls): no sample
        series = SERIES.get(metric.signal, _GENERIC)
        names: list[str] = ["model"]
        values: list[str] = [metric.model]
        if series.versioned:
            names.append("version")
            values.append(str(metric.version))
        if series is _GENERIC:
            names.append("signal")
            values.append(metric.signal)
        if series.subject_label is not None:
            names.append(series.subject_label)
            values.append(metric.subject)
        if metric.signal in ("drift", "score_drift"):
            names.append("test")
            values.append(str(metric.detail.get("test", "")))
        gauge(series, names).add_metric(values, metric.value)
        if metric.signal == "drift" and flag is not None:
            drifted.add_metric(values, 1.0 if flag else 0.0)
    yield from gauges.values()
    yield drifted
    yield breached

    alert_open = GaugeMetricFamily(
        _ALERT_OPEN,
        "1 for each open alert, by model, rule, subject, severity and owner.",
        labels=("model", "rule", "subject", "severity", "owner"),
    )
    counts: dict[tuple[str, str], int] = {}
    for alert in open_alerts:
        alert_open.add_metric(
            [alert.model, alert.rule, alert.subject, alert.severity, alert.owner or ""], 1.0
        )
        counts[(alert.model, alert.severity)] = counts.get((alert.model, alert.severity), 0) + 1
    yield alert_open
    alerts_open = GaugeMetricFamily(
        _ALERTS_OPEN, "Open alerts by model and severity.", labels=("model", "severity")
    )
    for model in sorted({m.model for m in newest} | {a.model for a in open_alerts}):
        for severity in SEVERITIES:
            alerts_open.add_metric([model, severity], float(counts.get((model, severity), 0)))
    yield alerts_open
    runs = GaugeMetricFamily(
        _LAST_RUN,
        "Unix time at which the newest monitored window was recorded, by model.",
        labels=("model",),
    )
    for model, at in sorted(last_run.items()):
        runs.add_metric([model], at)
    yield runs
