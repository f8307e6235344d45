"""Web UI: each page of `keel ui` with 1,000 model versions and 1,000,000 logged predictions,
and the requests MLflow's UI makes for the same registered model, in one run.

    python benchmarks/ui.py [--versions 1000] [--predictions 1000000] [--quick]
                            [--workdir /tmp/keel-bench-ui] [--rebuild] [--warmup 3]
                            [--repeat 20] [--no-mlflow] [--profile] [--profile-top 25]
                            [--json]

The store (built once, kept in --workdir, reused while the sizes match; --rebuild drops it):

- keel: the flights example (`Project.init(example="flights")`), trained small (max_iter 20),
  v1 promoted to production by ana and approved by ben (benchmarks/prediction_log.py's
  set-up). Then versions 2..N of `flights-delay`, each in its own finished run (the training
  run's lineage, new id, metrics) registered with `metadata.models.register` (which moves
  `candidate`, with its audit event), on the trained package. The release history goes
  through `keel.release` as a team makes it: every 10th version promoted to `canary`, every
  25th requested for `production` and approved by ben, every 100th request rejected, a
  rollback of production every 200 versions, and two requests left pending. Three smaller
  models (5 versions each). Monitoring: hourly windows over 30 days of the production
  version's signals (drift of every input, score drift, performance, volume, null rates)
  through `monitoring.record_metrics`; 40 alerts raised through `monitoring.raise_alert`
  (audit events too), every third resolved. Predictions: --predictions rows through keel's
  prediction-log writer (`StoredPredictionLog`, a 100-row batch per request, real inputs
  from the flights rows; 95% production, 5% canary), then `compact` moves
  all but the last 2% into Parquet segments, as `keel predictions compact` does.
- MLflow (`mlflow server`, SQLite backend): one registered model with --versions versions
  made by `MlflowClient.create_model_version` (dummy source, a tag and a description each),
  aliases production, canary and candidate, plus three smaller models.

Measured: both servers up, started as a user starts them (`keel -C PROJECT ui`, `mlflow server
--workers 1`), on 127.0.0.1; each page on its own keep-alive HTTP/1.1 connection
(http.client). --warmup untimed requests per page, then --repeat rounds in which every page of
both tools is fetched once, one request in flight at a time, the order rotated each round: on
a machine shared with other jobs their load falls on every page alike. Time is from the
request sent to the last body byte read; every answer must be 200. keel's pages are complete
HTML; MLflow answers JSON that its single-page app renders in the browser, so MLflow's rows
are a floor for what its user waits for (the JS bundle and rendering come on top).

--profile: each keel page under cProfile in this process (the app called directly over ASGI,
the page's store work run inline instead of in the thread pool), top calls by cumulative time;
the pstats files are left in WORKDIR/profiles.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import http.client
import json
import logging
import math
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Before MLflow is imported: no telemetry, no network.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

from common import machine_summary

MODEL = "flights-delay"
OTHER_MODELS = ("churn", "fraud-score", "eta-minutes")
OTHER_VERSIONS = 5
TARGET_MS = 300.0  # per page, from the issue
ENV = {"KEEL_USER": "ana"}
KEEL = Path(sys.executable).with_name("keel")
MLFLOW = Path(sys.executable).with_name("mlflow")
BATCH_ROWS = 100  # rows per request handed to the prediction log
RECENT_SHARE = 0.02  # of the predictions, left in the table (not compacted)
MONITOR_DAYS = 30
READY_TIMEOUT = 180.0
PROFILE_CALLS = 3  # calls of each page under cProfile (times are their sum)
STORE_FORMAT = 1  # bump when the build changes, so cached stores are rebuilt


# --- the pages -------------------------------------------------------------------------------
# Paths are formatted with the build's facts (facts.json): add a page with one line.


@dataclass(frozen=True)
class Page:
    label: str
    path: str  # str.format(**facts)


KEEL_PAGES = [
    Page("home", "/"),
    Page("model", "/models/{model}"),
    Page("model, older versions", "/models/{model}?before=500"),
    Page("monitoring", "/models/{model}/monitoring"),
    Page("version (production)", "/models/{model}/versions/{production}"),
    Page("version (oldest)", "/models/{model}/versions/1"),
    Page("prediction, in a segment", "/predictions?id={segment_prediction}"),
    Page("prediction, recent (table)", "/predictions?id={recent_prediction}"),
    Page("alerts", "/alerts"),
    Page("requests", "/requests"),
    Page("scorecard", "/scorecard"),
    Page("small model", "/models/{small_model}"),
]

#: MLflow's UI requests, by the keel page they compare with (None: no keel counterpart).
MLFLOW_REQUESTS: list[tuple[str, str | None, list[str]]] = [
    (
        "models list: registered-models/search (25 a page)",
        "home",
        ["/ajax-api/2.0/mlflow/registered-models/search?max_results=25"],
    ),
    (
        "model: registered-models/get + model-versions/search, 50 versions (keel's page size)",
        "model",
        [
            "/ajax-api/2.0/mlflow/registered-models/get?name={model}",
            "/ajax-api/2.0/mlflow/model-versions/search?filter={name_filter}&max_results=50",
        ],
    ),
    (
        "model: registered-models/get + model-versions/search, 200 versions",
        "model",
        [
            "/ajax-api/2.0/mlflow/registered-models/get?name={model}",
            "/ajax-api/2.0/mlflow/model-versions/search?filter={name_filter}&max_results=200",
        ],
    ),
    (
        "model: registered-models/get + model-versions/search, all versions",
        "model",
        [
            "/ajax-api/2.0/mlflow/registered-models/get?name={model}",
            "/ajax-api/2.0/mlflow/model-versions/search?filter={name_filter}&max_results=1000",
        ],
    ),
    (
        "version: model-versions/get + registered-models/get",
        "version (production)",
        [
            "/ajax-api/2.0/mlflow/model-versions/get?name={model}&version={versions}",
            "/ajax-api/2.0/mlflow/registered-models/get?name={model}",
        ],
    ),
]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- building the keel store -----------------------------------------------------------------


def build_keel(folder: Path, versions: int, predictions: int) -> dict[str, Any]:
    from keel.domain.identity import Actor
    from keel.release import approve, promote, reject, rollback
    from prediction_log import make_project

    timings: dict[str, float] = {}
    started = time.perf_counter()
    project = make_project(folder)  # trained v1, production through ana's request and ben
    timings["train"] = time.perf_counter() - started
    try:
        ana, ben = Actor("ana"), Actor("ben")
        metadata = project.metadata
        first = metadata.models.get(MODEL, 1)
        lineage = metadata.runs.get(first.run_id)

        step = time.perf_counter()
        for number in range(2, versions + 1):
            _register(project, MODEL, first, lineage, number)
            if number % 10 == 0:
                promote(project, f"{MODEL}@{number}", "canary", actor=ana, reason="canary")
            if number % 25 == 0:
                result = promote(project, f"{MODEL}@{number}", "production", actor=ana)
                assert result.request is not None, result.outcome
                if number % 100 == 0:
                    reject(project, result.request.id, actor=ben, comment="latency regressed")
                else:
                    approve(project, result.request.id, actor=ben, comment="looked fine")
            if number % 200 == 0:
                rollback(project, MODEL, actor=ben, reason="error rate after release")
            if number in (versions - 1, versions):
                if metadata.releases.holder(MODEL, "canary") != number:
                    promote(project, f"{MODEL}@{number}", "canary", actor=ana)
                # Requests for two versions, both left pending.
                result = promote(project, f"{MODEL}@{number}", "production", actor=ana)
                assert result.outcome == "pending", result.outcome
        for name in OTHER_MODELS:
            for number in range(1, OTHER_VERSIONS + 1):
                _register(project, name, first, lineage, number)
            promote(project, f"{name}@{OTHER_VERSIONS - 1}", "production", actor=ana)
        timings["versions"] = time.perf_counter() - step
        production = metadata.releases.holder(MODEL, "production")
        canary = metadata.releases.holder(MODEL, "canary")
        assert production is not None and canary is not None

        step = time.perf_counter()
        _monitoring(project, production)
        timings["monitoring"] = time.perf_counter() - step

        step = time.perf_counter()
        segment_id, recent_id = _predictions(project, predictions, production, canary)
        timings["predictions"] = time.perf_counter() - step
        events = len(metadata.audit.events())
        model_events = len(metadata.audit.events(model=MODEL))
    finally:
        project.close()
    return {
        "format": STORE_FORMAT,
        "model": MODEL,
        "versions": versions,
        "predictions": predictions,
        "production": production,
        "canary": canary,
        "small_model": OTHER_MODELS[0],
        "segment_prediction": segment_id,
        "recent_prediction": recent_id,
        "audit_events": events,
        "model_audit_events": model_events,
        "build_seconds": timings,
    }


def _register(project: Any, model: str, first: Any, lineage: Any, number: int) -> None:
    """A finished run (the training run's lineage under a new id) and its registered version."""
    from keel.domain.run import Metric, new_run_id

    runs = project.metadata.runs
    now = datetime.now(UTC)
    run = dataclasses.replace(
        lineage, id=new_run_id(), status="running", started_at=now, heartbeat_at=now, ended_at=None
    )
    runs.start(run, params={"max_iter": str(20 + number % 50)}, tags={"keel.step": "train"})
    auc = 0.70 + 0.05 * math.sin(number / 7)
    runs.finish(
        run.id,
        "completed",
        metrics=[Metric("roc_auc", auc, 0, now), Metric("log_loss", 0.6 - auc / 4, 0, now)],
    )
    project.metadata.models.register(
        model,
        run_id=run.id,
        package=first.package,
        flavor=first.flavor,
        inference_contract=first.inference_contract,
        metrics={"roc_auc": auc, "log_loss": 0.6 - auc / 4},
        actor="ana",
    )


def _monitoring(project: Any, production: int) -> None:
    """Hourly windows over MONITOR_DAYS of the production version's signals; alerts."""
    from keel.domain.monitoring import AlertDraft, MonitorMetric

    monitoring = project.metadata.monitoring
    inputs = [s["name"] for s in project.metadata.models.get(MODEL, 1).inference_contract["inputs"]]
    signals = [("drift", f"inputs.{n}") for n in inputs] + [
        ("score_drift", "outputs.probability"),
        ("performance", "roc_auc"),
        ("volume", "rows"),
        ("null_rate_change", "inputs.dep_delay"),
        ("null_rate_change", "inputs.wind_gust"),
    ]
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=MONITOR_DAYS)
    for day in range(MONITOR_DAYS):
        batch = []
        for hour in range(24):
            window_start = start + timedelta(days=day, hours=hour)
            for index, (signal_name, subject) in enumerate(signals):
                value = abs(math.sin(day * 24 + hour + index)) * 0.2
                batch.append(
                    MonitorMetric(
                        model=MODEL,
                        version=production,
                        window_start=window_start,
                        window_end=window_start + timedelta(hours=1),
                        signal=signal_name,
                        subject=subject,
                        value=0.7 + value / 2 if signal_name == "performance" else value,
                        detail={"breached": value > 0.18, "limit": 0.18, "rows": 1400},
                    )
                )
        monitoring.record_metrics(batch)
    now = datetime.now(UTC)
    opened = []
    for index in range(40):
        model = MODEL if index < 34 else OTHER_MODELS[index % len(OTHER_MODELS)]
        subject = f"inputs.{inputs[index % len(inputs)]}"
        severity = ("warning", "critical", "info")[index % 3]
        draft = AlertDraft(
            model=model,
            rule=f"feature-drift-{index // len(inputs)}",
            signal="drift",
            subject=subject,
            severity=severity,  # type: ignore[arg-type]
            message=f"{subject} drifted in 3 windows in a row",
            owner=("data", "monitoring", None)[index % 3],
            version=production,
            value=0.31,
            threshold=0.2,
            evidence={"windows": 3, "test": "psi"},
        )
        alert, _ = monitoring.raise_alert(draft, at=now, actor="keel")
        opened.append(alert.id)
    for alert_id in opened[::3][:15]:
        monitoring.resolve_alert(alert_id, at=now, actor="ben", reason="reference refreshed")


def _predictions(project: Any, count: int, production: int, canary: int) -> tuple[str, str]:
    """`count` predictions through the log's writer, all but the last RECENT_SHARE compacted.

    Returns an id in a segment and an id still in the table."""
    import numpy as np

    from keel.predlog.ids import new_prediction_id
    from keel.predlog.log import PredictionBatch
    from keel.predlog.read import compact
    from keel.predlog.writer import StoredPredictionLog
    from prediction_log import raw_rows

    rng = np.random.default_rng(7)
    pool = raw_rows(project).slice(0, 20_000).to_pylist()
    shapes = []  # inputs of 200 distinct requests, as JSON columns
    for _ in range(200):
        records = [pool[int(i)] for i in rng.integers(0, len(pool), BATCH_ROWS)]
        shapes.append(
            {
                name.removeprefix("inputs."): [
                    v.isoformat() if isinstance(v, datetime) else v
                    for v in (r[name] for r in records)
                ]
                for name in records[0]
            }
        )
    probabilities = rng.random((200, BATCH_ROWS)).round(6).tolist()
    batches = math.ceil(count / BATCH_ROWS)
    recent_from = batches - math.ceil(batches * RECENT_SHARE)
    segment_id = recent_id = ""
    cutoff = datetime.now(UTC)
    with StoredPredictionLog(project.metadata.predictions, flush_interval=0.2) as log:
        for index in range(batches):
            if index == recent_from:
                log.flush()
                cutoff = datetime.now(UTC)
                time.sleep(0.01)  # rows after the cutoff are strictly newer
            rows = min(BATCH_ROWS, count - index * BATCH_ROWS)
            canary_batch = index % 20 == 7
            ids = [new_prediction_id() for _ in range(rows)]
            shape = index % 200
            log.submit(
                PredictionBatch(
                    ids=ids,
                    at=datetime.now(UTC),
                    model=MODEL,
                    version=canary if canary_batch else production,
                    slot="canary" if canary_batch else "production",
                    inputs={k: v[:rows] for k, v in shapes[shape].items()},
                    outputs={
                        "prediction": [int(p > 0.5) for p in probabilities[shape][:rows]],
                        "probability": probabilities[shape][:rows],
                    },
                    latency_ms=4.2,
                )
            )
            if index == batches // 3:
                segment_id = ids[BATCH_ROWS // 2]
            if index == batches - 3:
                recent_id = ids[0]
            if index % 1000 == 0:
                _say(f"  {index * BATCH_ROWS:,} predictions submitted")
    _say("  compacting...")
    report = compact(project, older_than=timedelta(0), now=cutoff)
    _say(f"  {report.rows:,} rows in {len(report.segments)} segments")
    return segment_id, recent_id


# --- building the MLflow store ---------------------------------------------------------------


def build_mlflow(folder: Path, versions: int) -> dict[str, Any]:
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    started = time.perf_counter()
    for name, count in [(MODEL, versions), *((m, OTHER_VERSIONS) for m in OTHER_MODELS)]:
        client.create_registered_model(name, tags={"team": "ops"}, description=f"{name} model")
        for number in range(1, count + 1):
            client.create_model_version(
                name,
                source=f"file://{folder}/artifacts/{name}/{number}/model",
                tags={"roc_auc": f"{0.70 + 0.05 * math.sin(number / 7):.4f}"},
                description=f"version {number}",
            )
        client.set_registered_model_alias(name, "production", str(max(1, count - 5)))
        client.set_registered_model_alias(name, "canary", str(count - 1))
        client.set_registered_model_alias(name, "candidate", str(count))
    return {"versions": versions, "seconds": time.perf_counter() - started}


# --- servers and requests --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(command: list[str], port: int, probe: str, log: Path) -> Iterator[int]:
    """A server process in its own session; yields its pid once `probe` answers 200."""
    env = {**os.environ, **ENV, "PYTHONWARNINGS": "ignore"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{command[0]} exited; see {log}")
                try:
                    status, _ = fetch(http.client.HTTPConnection("127.0.0.1", port), probe)
                    if status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not start; see {log}")
                time.sleep(0.25)
            yield process.pid
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def fetch(connection: http.client.HTTPConnection, path: str) -> tuple[int, int]:
    connection.request("GET", path, headers={"Accept": "text/html,application/json"})
    response = connection.getresponse()
    body = response.read()
    return response.status, len(body)


@dataclass
class Target:
    """One page (or one page's requests) of one tool, on its own keep-alive connection."""

    tool: str
    label: str
    port: int
    paths: list[str]
    samples: list[float] = dataclasses.field(default_factory=list)
    size: int = 0
    connection: http.client.HTTPConnection | None = None

    def sample(self) -> float:
        """Fetch the paths one after the other (what the page needs); seconds taken."""
        try:
            return self._sample()
        except (http.client.RemoteDisconnected, ConnectionError):
            # The server closed the connection while it was idle (uvicorn keeps one alive
            # for 5 s): open another, as a browser does, and time the page again.
            self.connection = None
            return self._sample()

    def _sample(self) -> float:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.connection.connect()
        began = time.perf_counter()
        size = 0
        for path in self.paths:
            status, length = fetch(self.connection, path)
            if status != 200:
                raise RuntimeError(f"{self.tool} GET {path}: {status}")
            size += length
        self.size = size
        return time.perf_counter() - began

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.samples)
        return {
            "paths": self.paths,
            "median_ms": statistics.median(ordered) * 1000,
            "p95_ms": ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] * 1000,
            "bytes": self.size,
            "n": len(ordered),
        }


def measure(targets: list[Target], warmup: int, repeat: int) -> None:
    """Warm every target up, then time them round-robin, one request in flight at a time:
    on a shared machine, load from elsewhere falls on every page and both tools alike."""
    for target in targets:
        for _ in range(warmup):
            target.sample()
    for round_ in range(repeat):
        shift = round_ % len(targets)
        for target in targets[shift:] + targets[:shift]:
            target.samples.append(target.sample())
        if round_ % 5 == 4:
            _say(f"  round {round_ + 1} of {repeat}")
    for target in targets:
        if target.connection is not None:
            target.connection.close()


def keel_server(project_dir: Path, workdir: Path) -> Any:
    port = _free_port()
    command = [str(KEEL), "-C", str(project_dir), "ui", "--port", str(port)]
    return port, server(command, port, "/", workdir / "keel-ui.log")


def mlflow_server(folder: Path, workdir: Path) -> Any:
    port = _free_port()
    command = [
        str(MLFLOW),
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--default-artifact-root",
        f"file://{folder / 'artifacts'}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return port, server(command, port, "/health", workdir / "mlflow-server.log")


def bench(project_dir: Path, facts: dict[str, Any], args: argparse.Namespace) -> Any:
    """Both servers up; keel's pages and MLflow's requests timed in turn."""
    with ExitStack() as stack:
        targets = []
        keel_port, keel_running = keel_server(project_dir, args.workdir)
        stack.enter_context(keel_running)
        for page in KEEL_PAGES:
            targets.append(Target("keel", page.label, keel_port, [page.path.format(**facts)]))
        if not args.no_mlflow:
            mlflow_port, mlflow_running = mlflow_server(args.workdir / "mlflow", args.workdir)
            stack.enter_context(mlflow_running)
            values = {**facts, "name_filter": urllib.parse.quote(f"name='{MODEL}'")}
            for label, _keel_page, paths in MLFLOW_REQUESTS:
                formatted = [p.format(**values) for p in paths]
                targets.append(Target("mlflow", label, mlflow_port, formatted))
        _say(f"timing {len(targets)} pages, {args.repeat} rounds...")
        measure(targets, args.warmup, args.repeat)
    results: dict[str, dict[str, Any]] = {"keel": {}, "mlflow": {}}
    for target in targets:
        results[target.tool][target.label] = target.summary()
    return results


# --- profiling -------------------------------------------------------------------------------


def profile_pages(project_dir: Path, facts: dict[str, Any], folder: Path, top: int) -> Any:
    """Each keel page under cProfile, called over ASGI in this thread."""
    import keel.web.ui as ui_module
    from keel.project import Project

    async def inline(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    # The page's store work normally runs in the thread pool, out of cProfile's sight.
    patched = hasattr(ui_module, "run_in_threadpool")
    if patched:
        ui_module.run_in_threadpool = inline  # type: ignore[attr-defined]
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    with Project.open(project_dir, env=ENV) as project:
        app = ui_module.create_ui(project)
        for page in KEEL_PAGES:
            path = page.path.format(**facts)
            call(app, path)  # warm-up
            profiler = cProfile.Profile()
            began = time.perf_counter()
            profiler.enable()
            for _ in range(PROFILE_CALLS):
                status = call(app, path)
            profiler.disable()
            seconds = (time.perf_counter() - began) / PROFILE_CALLS
            assert status == 200, (path, status)
            slug = "".join(c if c.isalnum() else "-" for c in page.label)
            profiler.dump_stats(folder / f"{slug}.pstats")
            text = _summary(pstats.Stats(profiler), top)
            results[page.label] = {"seconds": seconds, "top": text, "inline": patched}
    return results


def _summary(stats: pstats.Stats, top: int) -> str:
    """keel's own calls by cumulative time, then every call by its own time."""
    rows = []
    for (filename, line, function), (_, calls, own, total, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = filename
        for marker in ("/src/", "/site-packages/", "/lib/python3.11/"):
            if marker in filename:
                where = filename.split(marker, 1)[1]
        name = f"{where}:{line}({function})" if line else function
        rows.append((total, own, calls, name, "keel/" in where or where.endswith(".html")))
    lines = ["  cumulative   own      calls  keel's calls (and templates)"]
    for total, own, calls, name, ours in sorted(rows, reverse=True):
        if ours and len(lines) <= top:
            lines.append(f"  {total * 1000:8.1f} ms {own * 1000:7.1f} ms {calls:7d}  {name}")
    lines.append("  own          cumulative calls  any call, by its own time")
    for total, own, calls, name, _ in sorted(rows, key=lambda r: -r[1])[: top // 2]:
        lines.append(f"  {own * 1000:8.1f} ms {total * 1000:7.1f} ms {calls:7d}  {name}")
    return "\n".join(lines)


def call(app: Any, target: str) -> int:
    """One GET through the ASGI app, in this thread; the response status."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "root_path": "",
    }
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    asyncio.run(app(scope, receive, send))
    return status[0]


# --- report ----------------------------------------------------------------------------------


def report(document: dict[str, Any]) -> None:
    facts = document["facts"]
    print(f"machine: {document['machine']}")
    build = facts["build_seconds"]
    print(
        f"store: {facts['versions']:,} versions of {MODEL} (+{len(OTHER_MODELS)} models of "
        f"{OTHER_VERSIONS}), {facts['predictions']:,} predictions "
        f"({RECENT_SHARE:.0%} not yet compacted), {facts['audit_events']:,} audit events "
        f"({facts['model_audit_events']:,} of {MODEL}); built in "
        f"{sum(build.values()):.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in build.items())})"
    )
    if "mlflow_build" in document:
        print(f"MLflow store built in {document['mlflow_build']['seconds']:.0f} s")
    keel = document["keel"]
    print(f"\n| keel page | median | p95 | bytes | under {TARGET_MS:.0f} ms? |")
    print("| --- | ---: | ---: | ---: | :-: |")
    for label, row in keel.items():
        met = "yes" if row["p95_ms"] < TARGET_MS else "no"
        print(
            f"| {label} `{_short(row['paths'][0])}` | {row['median_ms']:.1f} ms | "
            f"{row['p95_ms']:.1f} ms | {row['bytes']:,} | {met} |"
        )
    if "mlflow" in document:
        print(
            "\n| MLflow UI requests (JSON; the browser renders) | median | p95 | bytes | "
            "keel page | MLflow / keel (median) |"
        )
        print("| --- | ---: | ---: | ---: | --- | ---: |")
        for label, keel_page, _paths in MLFLOW_REQUESTS:
            row = document["mlflow"][label]
            ratio = (
                f"{row['median_ms'] / keel[keel_page]['median_ms']:.2f}x"
                if keel_page in keel
                else ""
            )
            print(
                f"| {label} | {row['median_ms']:.1f} ms | {row['p95_ms']:.1f} ms | "
                f"{row['bytes']:,} | {keel_page or ''} | {ratio} |"
            )
    print(
        f"\nrepeats per page: {document['repeat']} (after {document['warmup']} warm-up); "
        f"load average before and after: {document['load'][0]:.1f}, {document['load'][1]:.1f}"
    )
    for label, item in document.get("profiles", {}).items():
        print(
            f"\n--- profile: {label} ({item['seconds'] * 1000:.0f} ms a call under cProfile; "
            f"times below are {PROFILE_CALLS} calls' sum) ---"
        )
        if not item["inline"]:
            print("  (keel.web.ui has no run_in_threadpool to patch: the page's own work ran")
            print("   in the thread pool, out of this profile)")
        print(item["top"])


def _short(path: str) -> str:
    return path if len(path) <= 48 else path[:45] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--versions", type=int, default=1_000)
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100 versions, 100,000 predictions")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/keel-bench-ui"))
    parser.add_argument("--rebuild", action="store_true", help="drop the cached stores")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-mlflow", action="store_true", help="keel's pages only")
    parser.add_argument("--profile", action="store_true", help="cProfile each keel page")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.versions, args.predictions = 100, 100_000
    args.workdir = args.workdir.resolve() / f"v{args.versions}-p{args.predictions}"
    if args.rebuild:
        shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    import warnings

    warnings.filterwarnings("ignore")

    project_dir = args.workdir / "keel"
    facts_file = args.workdir / "facts.json"
    facts = json.loads(facts_file.read_text()) if facts_file.exists() else None
    if facts is None or facts.get("format") != STORE_FORMAT:
        shutil.rmtree(project_dir, ignore_errors=True)
        _say(f"building the keel store in {project_dir}...")
        facts = build_keel(project_dir, args.versions, args.predictions)
        facts_file.write_text(json.dumps(facts, indent=2))
    else:
        _say(f"reusing the keel store in {project_dir}")
    document: dict[str, Any] = {
        "machine": machine_summary(),
        "facts": facts,
        "warmup": args.warmup,
        "repeat": args.repeat,
    }
    if not args.no_mlflow:
        import mlflow

        document["machine"] = machine_summary(f"mlflow {mlflow.__version__}")
        mlflow_dir = args.workdir / "mlflow"
        mlflow_facts = mlflow_dir / "facts.json"
        if not mlflow_facts.exists():
            shutil.rmtree(mlflow_dir, ignore_errors=True)
            _say(f"building the MLflow store in {mlflow_dir}...")
            mlflow_facts.parent.mkdir(parents=True, exist_ok=True)
            mlflow_facts.write_text(json.dumps(build_mlflow(mlflow_dir, args.versions)))
        document["mlflow_build"] = json.loads(mlflow_facts.read_text())

    load_before = os.getloadavg()[0]
    results = bench(project_dir, facts, args)
    document["keel"] = results["keel"]
    if not args.no_mlflow:
        document["mlflow"] = results["mlflow"]
    document["load"] = [load_before, os.getloadavg()[0]]
    if args.profile:
        _say("profiling keel's pages in process...")
        document["profiles"] = profile_pages(
            project_dir, facts, args.workdir / "profiles", args.profile_top
        )
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        report(document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
