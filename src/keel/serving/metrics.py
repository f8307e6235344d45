"""Prometheus metrics of a serving process, in a registry of its own (no global state)."""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "ServingMetrics"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

#: Latency buckets (seconds): sub-millisecond serving up to slow batch requests.
_BUCKETS: Final = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


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
