"""Prometheus metrics of a serving process, in a registry of its own (no global state).

Under `keel serve --workers N` each worker counts in files of a folder the workers share
(prometheus-client's multiprocess mode: `PROMETHEUS_MULTIPROC_DIR`, set by keel for its
workers), and a scrape, whichever worker answers it, shows the sum over all of them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from keel.predlog.log import PredictionLog

__all__ = [
    "CONTENT_TYPE",
    "MULTIPROCESS_ENV",
    "PredictionLogCollector",
    "PredictionLogGauges",
    "ServingMetrics",
]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

#: Latency buckets (seconds): sub-millisecond serving up to slow batch requests.
_BUCKETS: Final = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: Buckets of requests and rows per model call (adaptive batching).
_SIZES: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256)


#: Where workers keep their counts (prometheus-client reads it when it is first imported).
MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE: Final = re.compile(r"gauge_live\w+_(\d+)\.db")


class ServingMetrics:
    """Requests, errors and latency per model, version and slot; model and reload state."""

    def __init__(self) -> None:
        folder = os.environ.get(MULTIPROCESS_ENV)
        #: The folder of every worker's counts, or None for a server of one process.
        self.multiprocess_dir = Path(folder) if folder else None
        self._extra: list[Collector] = []
        self._published: set[tuple[str, str, str]] = set()
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
            multiprocess_mode="livemax",
        )
        self.workers = Gauge(
            "keel_serving_workers",
            "Worker processes serving on this port (keel serve --workers).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.workers.set(1)
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
            multiprocess_mode="livesum",
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
        """Expose another collector's series (monitoring's, read from the store) with these."""
        if self.multiprocess_dir is None:
            self.registry.register(collector)
        else:
            self._extra.append(collector)

    def publish_served(self, serving: Iterable[tuple[str, str, str]]) -> None:
        """`keel_model_served` is 1 for each (model, version, slot) in `serving`, and no
        longer for what it was before."""
        now = set(serving)
        if self.multiprocess_dir is None:
            self.served.clear()
        else:  # another worker's files cannot be cleared: what stopped is set to 0
            for labels in self._published - now:
                self.served.labels(*labels).set(0)
        for labels in now:
            self.served.labels(*labels).set(1)
        self._published = now

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        _forget_dead_workers(self.multiprocess_dir)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        for collector in self._extra:
            registry.register(collector)
        return generate_latest(registry)


def _forget_dead_workers(folder: Path) -> None:
    """Drop the live gauges of workers that died without saying so (killed, crashed): a
    replacement counts again from its start, and the dead one's values must not add up."""
    from prometheus_client import multiprocess

    for path in folder.glob("gauge_live*.db"):
        found = _LIVE_FILE.fullmatch(path.name)
        if found is None:
            continue
        pid = int(found.group(1))
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    """Whether `pid` runs: a killed worker stays a zombie until the supervisor reaps it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's, alive
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (not Linux): os.kill said it exists
        return True
    return state != "Z"


class PredictionLogGauges:
    """The prediction log's health as series that add up over workers (multiprocess mode,
    where a collector would show only the scraped worker's log): refreshed by the worker
    every second and before a scrape."""

    def __init__(self, log: PredictionLog, registry: CollectorRegistry) -> None:
        self._log = log
        self._dead_lettered = 0
        self.dead_letter = Counter(
            "keel_prediction_log_dead_letter_rows",
            "Logged predictions the store refused (a value it cannot hold), written to the "
            "dead-letter file instead.",
            registry=registry,
        )
        self.spooled = Gauge(
            "keel_prediction_log_spooled_rows",
            "Logged predictions only the local spool holds, waiting for the store.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.store_up = Gauge(
            "keel_prediction_log_store_up",
            "1 while the store takes logged predictions, 0 during an outage.",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.accepting = Gauge(
            "keel_prediction_log_accepting",
            "1 while the prediction log can take rows (memory or spool), else 0 (not ready).",
            registry=registry,
            multiprocess_mode="livemin",
        )

    def refresh(self) -> None:
        log = self._log
        total = log.dead_lettered
        if total > self._dead_lettered:
            self.dead_letter.inc(total - self._dead_lettered)
            self._dead_lettered = total
        self.spooled.set(log.spooled)
        self.store_up.set(0 if log.store_down else 1)
        self.accepting.set(0 if log.refusing is not None else 1)


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
