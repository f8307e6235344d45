"""Prometheus metrics of a serving process, in a registry of its own (no global state)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from keel.predlog.log import PredictionLog

__all__ = ["CONTENT_TYPE", "PredictionLogCollector", "ServingMetrics"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

#: Latency buckets (seconds): sub-millisecond serving up to slow batch requests.
_BUCKETS: Final = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: Buckets of requests and rows per model call (adaptive batching).
_SIZES: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServingMetrics:
    """Requests, errors and latency per model, version and slot; model and reload state."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("model", "version", "slot")
        self.requests = Counter(
            "keel_requests",
            "Prediction requests answered, by model, version, slot and protocol.",
            (*labels, "protocol"),
            registry=self.registry,
        )
        self.rows = Counter("keel_predictions", "Rows predicted.", labels, registry=self.registry)
        self.errors = Counter(
            "keel_request_errors",
            "Requests refused or failed, by model, HTTP status and rule.",
            ("model", "status", "rule"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "keel_request_seconds",
            "Time from reading the request to the response, by model, version and slot.",
            labels,
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.served = Gauge(
            "keel_model_served",
            "1 for each version this process serves, by slot.",
            labels,
            registry=self.registry,
        )
        self.load_failures = Counter(
            "keel_model_load_failures",
            "Versions that failed to load or warm (the previous one kept serving).",
            ("model", "version"),
            registry=self.registry,
        )
        self.reloads = Counter(
            "keel_model_reloads",
            "Route switches after an alias moved.",
            ("model",),
            registry=self.registry,
        )
        self.log_buffered = Gauge(
            "keel_prediction_log_buffered_rows",
            "Predictions accepted and not yet durable in the prediction log.",
            registry=self.registry,
        )
        self.input_contract = Counter(
            "keel_input_contract_violations",
            "Values outside the ranges and domains a version was registered with, by input "
            "and mode (enforce: refused with 422; warn: answered).",
            ("model", "version", "input", "mode"),
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "keel_model_batch_requests",
            "Requests per model call: above 1 when adaptive batching gathered requests that "
            "waited while the model was busy.",
            ("model", "version"),
            buckets=_SIZES,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "keel_model_batch_rows",
            "Rows per model call (adaptive batching).",
            ("model", "version"),
            buckets=_SIZES,
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "keel_shadow_dropped",
            "Shadow scorings skipped because the shadow queue was full.",
            ("model",),
            registry=self.registry,
        )

    def include(self, collector: Collector) -> None:
        """Expose another collector's series on this registry (monitoring's, from the store)."""
        self.registry.register(collector)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class PredictionLogCollector(Collector):
    """The prediction log's health, read from the log at each scrape. Alert on
    `keel_prediction_log_dead_letter_rows_total` increasing (rows the store refused, set
    aside in the dead-letter file) and on `keel_prediction_log_store_up == 0`."""

    def __init__(self, log: PredictionLog) -> None:
        self._log = log

    def collect(self) -> Iterator[Metric]:
        log = self._log
        yield CounterMetricFamily(
            "keel_prediction_log_dead_letter_rows",
            "Logged predictions the store refused (a value it cannot hold), written to the "
            "dead-letter file instead.",
            value=log.dead_lettered,
        )
        yield GaugeMetricFamily(
            "keel_prediction_log_spooled_rows",
            "Logged predictions only the local spool holds, waiting for the store.",
            value=log.spooled,
        )
        yield GaugeMetricFamily(
            "keel_prediction_log_store_up",
            "1 while the store takes logged predictions, 0 during an outage.",
            value=0 if log.store_down else 1,
        )
        yield GaugeMetricFamily(
            "keel_prediction_log_accepting",
            "1 while the prediction log can take rows (memory or spool), else 0 (not ready).",
            value=0 if log.refusing is not None else 1,
        )
