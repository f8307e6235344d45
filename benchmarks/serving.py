"""Serving: single-row latency and throughput of `keel serve` against `mlflow models serve` and a
minimal Starlette endpoint (the floor), with the same model, in one run.

    python benchmarks/serving.py [--model flights|light] [--seconds 8] [--rounds 2]
                                 [--warmup 3] [--clients 1,8,32]
                                 [--servers floor,keel,keel-workers,mlflow]
                                 [--keep DIR] [--json]

One model for all three servers: the flights example (`Project.init(example="flights")`, its
features.py and train.py, HistGradientBoostingClassifier with 200 iterations x 31 leaves, seed
7), trained by `keel.pipeline.train.train` on January 2013 and moved to `production`.
`--model light` is a cheaper model, to show the servers' own costs: features.py replaced by a
selection of the 16 numeric raw columns cast to float, and 20 iterations.
Requests are complete raw rows of May 2013 (no missing weather: a null cannot travel in every
protocol here), one row per request, sent in turn from a pool of 2,000.

The servers, each alone on the machine, started and stopped in turn:

- keel: `keel -C PROJECT serve --port N --workers 1` as a user runs it, prediction logging on (the
  default), POST /predict {"records": [row]}. Per request keel checks the row against the
  version's inference contract (every input present, known, of its type), converts it to a
  typed DataFrame, computes the features once for predict and predict_proba, assigns a
  prediction id, updates its Prometheus metrics, keeps the row for warming a reloaded
  version, and hands the row, outputs and id to the prediction log (written by a background
  thread to the project's SQLite store, every 200 ms). It also polls the audit log head for
  alias moves once a second. It limits OpenMP/BLAS to one thread itself. Requests that wait
  while the model is busy share its next call (adaptive batching, serving.batching), and the
  classifier is called once per call (its prediction is the most probable class).
- keel-workers: the same with `--workers N`, N the machine's cores: N processes on one port.
- MLflow: `mlflow models serve -m DIR --env-manager local --port N` (uvicorn with one worker and
  MLflow's FastAPI scoring app; its access log on, as by default), POST /invocations
  {"dataframe_records": [row]}. DIR holds a pyfunc saved by `mlflow.pyfunc.save_model`: a
  PythonModel holding keel's loaded estimator (the same fitted object) and calling the same
  features.py (`code_paths`), with a signature inferred from request rows, so MLflow checks
  and converts inputs against it.
- floor: a Starlette app served by uvicorn with keel's settings (one process, access log off),
  POST /predict {"records": [row]}: `orjson.loads`, `pandas.DataFrame(records)`, and keel's
  own `LoadedModel.score` (features once, predict, predict_proba) of the same package, then
  `orjson.dumps`. No validation, no ids, no metrics, no logging.
- keel-nolog, only with `--servers ...,keel-nolog`: keel on a copy of the project whose
  keel.yaml sets `serving: {log: {enabled: false}}`, to show what the prediction log costs.
- keel-unbatched, only when asked for: keel on a copy whose keel.yaml sets
  `serving: {batching: {enabled: false}}`, each request its own model call.
- keel-buffered and keel-durable, only when asked for: keel on copies whose keel.yaml sets
  `serving.log.durability`, to show what answering after the spool's fsync costs.

OMP_NUM_THREADS=1 for MLflow and the floor (keel sets the same limit per predicting thread);
on two shared cores a thread team per call only spins. The load generator is this process: N
threads, each on its own keep-alive HTTP/1.1 connection (raw sockets, TCP_NODELAY, the requests
encoded up front), each sending its next request when the previous answer has arrived. Each
server is started `--rounds` times, the order reversed every other round (floor, keel, MLflow,
then MLflow, keel, floor) so that the machine's other load falls on all alike; each start:
`--warmup` seconds at 8 clients (untimed), then `--seconds` at each client count. The rounds'
answers are pooled. Latency is measured from the first byte sent to the last byte received;
throughput is the requests answered divided by the time from the first request sent to the
last answer. Every answer must be 200. On its first start, before timing, every server
answers the same 200 rows, and their probabilities must be identical (exact float equality);
each time keel's server has stopped (which flushes its log), its prediction log must hold
every row it answered. Before the servers, the model's own cost per row is timed in this
process (one thread): the DataFrame, features.py, predict, predict_proba.

Child processes keep their bytecode in a temp cache (PYTHONPYCACHEPREFIX), as an installed
package has it, even where PYTHONDONTWRITEBYTECODE is set; start-up is not timed. Telemetry is
off (MLFLOW_DISABLE_TELEMETRY, DO_NOT_TRACK).

`--keep DIR` keeps the trained project, the MLflow model and the servers' logs in DIR, and
reuses them when run again. Internal: `serving.py --floor PROJECT PORT` runs the floor server.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Before MLflow is imported: no telemetry, no network.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

from common import machine_summary

MODEL = "flights-delay"
ENV = {"KEEL_USER": "bench"}
TRAIN_UNTIL = datetime(2013, 2, 1, tzinfo=UTC)  # January
REQUEST_MONTH = "2013-05"
POOL = 2_000  # distinct request rows, sent in turn
SANITY_ROWS = 200
COST_ROWS = 200  # rows timed in-process for the model's own cost
P50_TARGET = 1.0  # keel p50 / floor p50, at most: batching must not cost a lone client
THROUGHPUT_TARGETS = {8: 10.0, 32: 15.0}  # keel req/s / MLflow req/s, at least, by clients
WORKERS_TARGET = 1.6  # keel-workers req/s / keel req/s at 8 clients on 2 cores, at least
READY_TIMEOUT = 180.0  # seconds a server may take to start
KEEL = Path(sys.executable).with_name("keel")
MLFLOW = Path(sys.executable).with_name("mlflow")


# --- set-up: the project, the MLflow model, the request rows ------------------------------------


#: `--model light`: feature code that only selects and casts the numeric raw columns.
LIGHT_FEATURES = '''"""benchmarks/serving.py --model light: the numeric raw columns, as floats."""

import pandas as pd

NUMERIC = [
    "month", "day", "hour", "minute", "sched_dep_time", "sched_arr_time", "distance", "temp",
    "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib",
]  # fmt: skip


def build(raw: pd.DataFrame) -> pd.DataFrame:
    return raw[NUMERIC].astype("float64")
'''
LIGHT_ITERATIONS = 20


def make_project(folder: Path, model: str) -> None:
    """The flights example, trained on January, version 1 in production; `light`
    swaps in LIGHT_FEATURES and trains 20 iterations instead of 200."""
    import yaml

    from keel.pipeline.train import train
    from keel.project import Project

    Project.init(folder, example="flights", env=ENV).close()
    spec = yaml.safe_load((folder / "keel.yaml").read_text())
    spec["release"] = {"gates": [], "approvals": {"required": 0}}
    if model == "light":
        (folder / "features.py").write_text(LIGHT_FEATURES)
        spec["training"]["params"]["max_iter"] = LIGHT_ITERATIONS
    (folder / "keel.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with Project.open(folder, env=ENV) as project:
        result = train(project, as_of=TRAIN_UNTIL)
        assert result.registered is not None and result.registered.version == 1
        project.metadata.releases.move_alias(
            MODEL, "production", 1, expected_holder=None, actor="bench", reason="benchmark"
        )


def request_rows(folder: Path, contract: dict[str, Any]) -> list[dict[str, Any]]:
    """Complete raw rows of REQUEST_MONTH as JSON records, inputs in the contract's order."""
    import pyarrow.parquet as pq

    names = [spec["name"] for spec in contract["inputs"]]
    table = pq.read_table(folder / "data" / "raw" / f"{REQUEST_MONTH}.parquet")
    rows = []
    for row in table.select(names).to_pylist():
        if None in row.values():
            continue
        row["time_hour"] = row["time_hour"].isoformat()
        rows.append(row)
        if len(rows) == POOL:
            break
    return rows


def save_mlflow_model(project_dir: Path, target: Path, rows: list[dict[str, Any]]) -> None:
    """A pyfunc of the production version: its fitted estimator, the same features.py."""
    import logging

    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from keel.project import Project

    logging.getLogger("mlflow").setLevel(logging.ERROR)

    class FlightsDelay(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        """Raw rows in, prediction and probability out: what keel's /predict answers."""

        def __init__(self, estimator: Any) -> None:
            self.estimator = estimator

        def load_context(self, context: Any) -> None:
            import features  # type: ignore[import-not-found]  # from code_paths

            self.build = features.build

        # No type hints: MLflow reads them as an input schema (and warns about Any).
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            x = self.build(model_input)
            return pd.DataFrame(
                {
                    "prediction": self.estimator.predict(x),
                    "probability": self.estimator.predict_proba(x)[:, 1],
                }
            )

    with Project.open(project_dir, env=ENV) as project:
        version = project.metadata.models.resolve(f"{MODEL}@production")
        estimator = project.load_model(version).estimator
    # The request as MLflow's server parses it: pandas.DataFrame(records), strings stay strings.
    example = pd.DataFrame(rows[:100])
    wrapped = FlightsDelay(estimator)
    wrapped.build = _features_module(project_dir).build
    answered = wrapped.predict(None, example)  # type: ignore[no-untyped-call]
    signature = infer_signature(example, answered)
    del wrapped.build
    mlflow.pyfunc.save_model(
        target,
        python_model=wrapped,
        code_paths=[str(project_dir / "features.py")],
        signature=signature,
        # Given, so MLflow does not start a process to infer them (none of this is timed).
        pip_requirements=[f"scikit-learn=={_version('scikit-learn')}", "pandas", "numpy"],
    )


def _features_module(project_dir: Path) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("_bench_features", project_dir / "features.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def model_cost(project_dir: Path, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Median seconds per row of what every server computes, in this process, one thread."""
    import statistics

    import pandas as pd
    from threadpoolctl import threadpool_limits

    from keel.project import Project

    sample = rows[:COST_ROWS]

    def median(work: Any) -> float:
        timings = []
        for index in range(len(sample)):
            started = time.perf_counter()
            work(index)
            timings.append(time.perf_counter() - started)
        return statistics.median(timings)

    with Project.open(project_dir, env=ENV) as project:
        loaded = project.load_model(project.metadata.models.resolve(f"{MODEL}@production"))
        with threadpool_limits(limits=1):  # scikit-learn is loaded by now
            frames = [pd.DataFrame([row]) for row in sample]
            features = [loaded.features(frame) for frame in frames]
            loaded.score(frames[0])
            return {
                "DataFrame(records)": median(lambda i: pd.DataFrame([sample[i]])),
                "features.build": median(lambda i: loaded.features(frames[i])),
                "predict": median(lambda i: loaded.estimator.predict(features[i])),
                "predict_proba": median(lambda i: loaded.estimator.predict_proba(features[i])),
                "LoadedModel.score": median(lambda i: loaded.score(frames[i])),
            }


# --- the floor: a minimal Starlette endpoint (its own process) -----------------------------------


def run_floor(project_dir: Path, port: int) -> None:
    import orjson
    import pandas as pd
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from threadpoolctl import threadpool_limits

    from keel.project import Project

    project = Project.open(project_dir, env=ENV)
    loaded = project.load_model(project.metadata.models.resolve(f"{MODEL}@production"))

    async def predict(request: Request) -> Response:
        records = orjson.loads(await request.body())["records"]
        predictions, probabilities = loaded.score(pd.DataFrame(records))
        assert probabilities is not None
        answer = [
            {"prediction": p, "probability": q}
            for p, q in zip(predictions.tolist(), probabilities[:, 1].tolist(), strict=True)
        ]
        return Response(orjson.dumps({"predictions": answer}), media_type="application/json")

    async def live(request: Request) -> Response:
        return Response(b"{}", media_type="application/json")

    app = Starlette(
        routes=[Route("/predict", predict, methods=["POST"]), Route("/live", live)],
    )
    threadpool_limits(limits=1)  # the event loop's thread predicts, as in keel
    # keel serve's settings.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=10,
    )


# --- servers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    name: str
    path: str  # the prediction endpoint
    wrap: str  # the JSON key the records go under
    ready: str  # a GET path answering 200 once the model is loaded


SERVERS = {
    "keel": Server("keel", "/predict", "records", "/v2/health/ready"),
    "mlflow": Server("mlflow", "/invocations", "dataframe_records", "/ping"),
    "floor": Server("floor", "/predict", "records", "/live"),
    # Not run unless asked for: keel with `serving.log.enabled: false`, for the log's cost.
    "keel-nolog": Server("keel-nolog", "/predict", "records", "/v2/health/ready"),
    # Nor these: keel with `serving.log.durability` set, for the cost of durable logging.
    "keel-buffered": Server("keel-buffered", "/predict", "records", "/v2/health/ready"),
    "keel-unbatched": Server("keel-unbatched", "/predict", "records", "/v2/health/ready"),
    "keel-workers": Server("keel-workers", "/predict", "records", "/v2/health/ready"),
    "keel-durable": Server("keel-durable", "/predict", "records", "/v2/health/ready"),
}
# Each keel variant on every core too: `keel-nolog-workers` and so on.
SERVERS |= {
    f"{name}-workers": Server(f"{name}-workers", "/predict", "records", "/v2/health/ready")
    for name in ("keel-nolog", "keel-buffered", "keel-unbatched", "keel-durable")
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running(
    argv: Sequence[str], env: dict[str, str], port: int, ready: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, once `ready` answers 200; stopped with SIGTERM (SIGKILL after 30 s)."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(argv), env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{argv[0]} exited:\n{log.read_text()[-4000:]}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready}", timeout=5) as r:
                        if r.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not ready in {READY_TIMEOUT:.0f} s:\n{log.read_text()}")
                time.sleep(0.2)
            yield process
        finally:
            # The server's own process group (start_new_session): `mlflow models serve` runs
            # uvicorn as a child process.
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def unlogged(project_dir: Path) -> Path:
    """A copy of the project whose keel.yaml switches prediction logging off."""
    return with_log(project_dir, "nolog", {"enabled": False})


def with_log(project_dir: Path, suffix: str, log: dict[str, object]) -> Path:
    """A copy of the project whose keel.yaml sets `serving.log` to `log`."""
    return with_serving(project_dir, suffix, {"log": log})


def with_serving(project_dir: Path, suffix: str, serving: dict[str, object]) -> Path:
    """A copy of the project whose keel.yaml sets `serving:` to `serving`."""
    import yaml

    copy = project_dir.with_name(f"{project_dir.name}-{suffix}")
    if not copy.exists():
        shutil.copytree(project_dir, copy)
        spec = yaml.safe_load((copy / "keel.yaml").read_text())
        spec["serving"] = serving
        (copy / "keel.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return copy


def server_command(name: str, project_dir: Path, mlflow_model: Path, port: int) -> list[str]:
    """Each server as its user starts it."""
    if name.startswith("keel-") and name.endswith("-workers") and name != "keel-workers":
        from keel.server import available_cores

        command = server_command(name.removesuffix("-workers"), project_dir, mlflow_model, port)
        return [*command[:-1], str(available_cores())]
    if name == "keel":
        return [str(KEEL), "-C", str(project_dir), "serve", "--port", str(port), "--workers", "1"]
    if name == "keel-workers":
        command = [str(KEEL), "-C", str(project_dir), "serve", "--port", str(port)]
        from keel.server import available_cores

        return [*command, "--workers", str(available_cores())]
    if name == "keel-nolog":
        command = [str(KEEL), "-C", str(unlogged(project_dir)), "serve", "--port", str(port)]
        return [*command, "--workers", "1"]
    if name == "keel-unbatched":
        copy = with_serving(project_dir, "unbatched", {"batching": {"enabled": False}})
        return [str(KEEL), "-C", str(copy), "serve", "--port", str(port), "--workers", "1"]
    if name in ("keel-buffered", "keel-durable"):
        mode = name.removeprefix("keel-")
        copy = with_log(project_dir, mode, {"durability": mode})
        return [str(KEEL), "-C", str(copy), "serve", "--port", str(port), "--workers", "1"]
    if name == "mlflow":
        serve = [str(MLFLOW), "models", "serve", "-m", str(mlflow_model)]
        return [*serve, "--env-manager", "local", "--port", str(port)]
    return [sys.executable, str(Path(__file__).resolve()), "--floor", str(project_dir), str(port)]


def child_env(root: Path, *, one_thread: bool) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "MLFLOW_TRACKING_URI", "OMP_NUM_THREADS")
    }
    env.update(ENV)
    # As in an activated virtual environment: `mlflow models serve` runs `uvicorn` from PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    env["PYTHONWARNINGS"] = "ignore"
    if one_thread:
        env["OMP_NUM_THREADS"] = "1"
    return env


# --- the load generator -----------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: send prepared bytes, read one answer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.sock.sendall(request)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self.buffer += self._recv()
        head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4 :]
        lines = head.split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
        if "content-length" not in headers:
            raise RuntimeError(f"an answer without Content-Length: {head!r}")
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self.buffer += self._recv()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        if headers.get("connection", "").lower() == "close":
            raise RuntimeError("the server closed the connection")
        return status, body

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


def encode_requests(server: Server, port: int, rows: list[dict[str, Any]]) -> list[bytes]:
    requests = []
    for row in rows:
        body = json.dumps({server.wrap: [row]}, allow_nan=False).encode()
        head = (
            f"POST {server.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


@dataclass
class Load:
    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: CPU seconds the load generator (this process) used meanwhile: on a machine it shares
    #: with the server, what the server could not have.
    generator_cpu: float = 0.0
    #: CPU seconds the server's processes (all of them: workers, MLflow's uvicorn) used.
    server_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def generator_cores(self) -> float:
        return self.generator_cpu / self.seconds

    @property
    def server_cores(self) -> float:
        return self.server_cpu / self.seconds

    def merge(self, other: Load) -> None:
        """Pool another round's answers into this one."""
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.errors += other.errors
        self.generator_cpu += other.generator_cpu
        self.server_cpu += other.server_cpu

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def load(port: int, requests: list[bytes], clients: int, seconds: float) -> Load:
    """`clients` threads, each sending its next request when its answer has arrived."""
    result = Load(clients)
    per_client: list[list[float]] = [[] for _ in range(clients)]
    connections = [Connection(port) for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    ends = [0.0] * clients
    deadline = 0.0

    def client(index: int) -> None:
        connection, latencies = connections[index], per_client[index]
        turn = index
        start.wait()
        try:
            while True:
                sent = time.perf_counter()
                if sent >= deadline:
                    break
                status, body = connection.exchange(requests[turn % len(requests)])
                done = time.perf_counter()
                latencies.append(done - sent)
                ends[index] = done
                if status != 200:
                    result.errors.append(f"{status}: {body[:300]!r}")
                    break
                turn += clients
        except Exception as exc:  # noqa: BLE001 - reported after the run
            result.errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    cpu = time.process_time()
    deadline = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    result.generator_cpu = time.process_time() - cpu
    for connection in connections:
        connection.close()
    result.seconds = max(ends) - began
    result.latencies = [x for latencies in per_client for x in latencies]
    return result


def tree_cpu(pid: int) -> float:
    """CPU seconds (user and system) used so far by `pid` and every process below it."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, up in parents.items() if up == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(used.get(member, 0.0) for member in tree)


def probabilities(name: str, port: int, requests: list[bytes]) -> list[float]:
    """The probability each of `requests` (one row each) gets."""
    connection = Connection(port)
    found = []
    try:
        for request in requests:
            status, body = connection.exchange(request)
            if status != 200:
                raise RuntimeError(f"{name} answered {status}: {body[:500]!r}")
            found.append(float(json.loads(body)["predictions"][0]["probability"]))
    finally:
        connection.close()
    return found


# --- the run ----------------------------------------------------------------------------------


def bench_server(
    server: Server,
    argv: list[str],
    env: dict[str, str],
    port: int,
    rows: list[dict[str, Any]],
    logs: Path,
    args: argparse.Namespace,
    *,
    sanity: bool,
) -> tuple[list[Load], list[float], int]:
    """The timed loads, the sanity rows' probabilities (when `sanity`), and how many requests
    were answered in all (sanity, warm-up and timed)."""
    print(f"{server.name}: starting...", file=sys.stderr, flush=True)
    requests = encode_requests(server, port, rows)
    with running(argv, env, port, server.ready, logs / f"{server.name}.log") as process:
        answers = probabilities(server.name, port, requests[:SANITY_ROWS]) if sanity else []
        warm = load(port, requests, max(args.clients), args.warmup)
        if warm.errors:
            raise RuntimeError(f"{server.name}: {warm.errors[:3]}")
        runs = []
        for clients in args.clients:
            print(f"{server.name}: {clients} client(s)...", file=sys.stderr, flush=True)
            cpu = tree_cpu(process.pid)
            result = load(port, requests, clients, args.seconds)
            result.server_cpu = tree_cpu(process.pid) - cpu
            if result.errors:
                raise RuntimeError(f"{server.name}: {result.errors[:3]}")
            runs.append(result)
    answered = len(answers) + len(warm.latencies) + sum(len(run.latencies) for run in runs)
    return runs, answers, answered


def logged_rows(project_dir: Path) -> int:
    """Predictions of MODEL in the project's prediction log (none are compacted here)."""
    from keel.project import Project

    with Project.open(project_dir, env=ENV) as project:
        everything = project.metadata.predictions.closed(datetime(9999, 1, 1, tzinfo=UTC))
    return sum(rows for model, _, rows in everything if model == MODEL)


def milliseconds(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f} ms" if ms < 1 else f"{ms:.1f} ms" if ms < 100 else f"{ms:,.0f} ms"


def _spin(seconds: float) -> int:
    """Pure-Python work for `seconds`: how many steps one process gets done."""
    steps, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(10_000):
            steps += 1
    return steps


def two_process_scaling(seconds: float = 2.0) -> float:
    """What two CPU-bound processes get done together against one alone, on this machine
    now: the ceiling for `--workers 2` (2.0 on two free cores; less where the cores are
    shared or one is busy)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        pool.submit(_spin, 0.1).result()
        alone = pool.submit(_spin, seconds).result()
        together = sum(f.result() for f in [pool.submit(_spin, seconds) for _ in range(2)])
    return together / alone


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (5 min {five:.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per load")
    parser.add_argument("--rounds", type=int, default=2, help="times each server is started")
    parser.add_argument("--warmup", type=float, default=3.0, help="untimed seconds per server")
    parser.add_argument(
        "--clients",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[1, 8, 32],
        help="concurrent clients, comma-separated (default 1,8,32)",
    )
    parser.add_argument(
        "--servers",
        default="floor,keel,keel-workers,mlflow",
        help="which servers, comma-separated: keel is one process (--workers 1), keel-workers "
        "one worker per core; also keel-nolog (keel, prediction logging off), keel-unbatched "
        "(serving.batching off), keel-buffered and keel-durable (serving.log.durability set), "
        "and each of these with -workers (every core)",
    )
    parser.add_argument(
        "--model",
        choices=["flights", "light"],
        default="flights",
        help="the flights example as shipped, or light feature code and 20 iterations",
    )
    parser.add_argument("--keep", type=Path, help="keep the project and logs in this folder")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--floor", nargs=2, metavar=("PROJECT", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor:
        run_floor(Path(args.floor[0]), int(args.floor[1]))
        return 0

    warnings.filterwarnings("ignore")  # MLflow's chatter is not a result
    chosen = [name.strip() for name in args.servers.split(",")]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="keel-bench-serving-") as tmp:
        root = args.keep.resolve() if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        project_dir, logs = root / f"project-{args.model}", root / f"logs-{args.model}"
        logs.mkdir(exist_ok=True)
        if not (project_dir / "keel.yaml").exists():
            print(f"set-up: training ({args.model})...", file=sys.stderr, flush=True)
            make_project(project_dir, args.model)
        from keel.project import Project

        with Project.open(project_dir, env=ENV) as project:
            contract = project.metadata.models.get(MODEL, 1).inference_contract
        rows = request_rows(project_dir, contract)
        mlflow_model = root / f"mlflow-model-{args.model}"
        if "mlflow" in chosen and not mlflow_model.exists():
            print("set-up: saving the MLflow pyfunc...", file=sys.stderr, flush=True)
            # MLflow warns that `predict` has no type hints: left out on purpose (see there).
            with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                save_mlflow_model(project_dir, mlflow_model, rows)
        setup_seconds = time.perf_counter() - started

        print("model cost, in this process...", file=sys.stderr, flush=True)
        cost = model_cost(project_dir, rows)
        results: dict[str, list[Load]] = {}
        answers: dict[str, list[float]] = {}
        loads: dict[str, list[str]] = {}
        logged = answered_by_keel = 0
        # Rounds alternate the order (floor, keel, mlflow, then mlflow, keel, floor), so a
        # change in the machine's other load falls on every server alike.
        plan = [n for r in range(args.rounds) for n in (chosen if r % 2 == 0 else chosen[::-1])]
        for name in plan:
            port = free_port()
            command = server_command(name, project_dir, mlflow_model, port)
            # keel limits OpenMP/BLAS itself (per predicting thread); the others are told to.
            env = child_env(root, one_thread=not name.startswith("keel"))
            loads.setdefault(name, []).append(load_average())
            before = logged_rows(project_dir) if name == "keel" else 0
            runs, found, answered = bench_server(
                SERVERS[name], command, env, port, rows, logs, args, sanity=name not in answers
            )
            if name not in answers:
                answers[name], results[name] = found, runs
            else:
                for pooled, run in zip(results[name], runs, strict=True):
                    pooled.merge(run)
            if name == "keel":
                # Stopping the server flushed its log: every answered row must be there.
                logged += logged_rows(project_dir) - before
                answered_by_keel += answered
                if logged != answered_by_keel:
                    raise AssertionError(
                        f"keel answered {answered_by_keel} rows and logged {logged}"
                    )
    total = time.perf_counter() - started

    # Sanity: the same probabilities from every server, exactly.
    reference = next(iter(answers))
    for name, found in answers.items():
        if found != answers[reference]:
            worst = max(abs(a - b) for a, b in zip(found, answers[reference], strict=True))
            raise AssertionError(f"{name} and {reference} disagree (largest difference {worst})")

    import sklearn
    import starlette
    import uvicorn

    mlflow_version = []
    if "mlflow" in chosen:  # not installed where only keel's variants are compared
        import mlflow

        mlflow_version.append(f"mlflow {mlflow.__version__}")
    machine = machine_summary(
        *mlflow_version,
        f"uvicorn {uvicorn.__version__}",
        f"starlette {starlette.__version__}",
        f"scikit-learn {sklearn.__version__}",
    )
    print(f"machine: {machine}")
    if any("workers" in name for name in chosen):
        print(
            "two CPU-bound processes get done together "
            f"{two_process_scaling():.2f}x what one does alone (the ceiling for --workers 2)"
        )
    described = {
        "flights": "the flights example's features.py, 200 iterations x 31 leaves",
        "light": f"numeric columns as features, {LIGHT_ITERATIONS} iterations x 31 leaves",
    }
    print(f"model: HistGradientBoostingClassifier, {described[args.model]}")
    print(
        "load average when each server started: "
        + "; ".join(f"{name} {', '.join(values)}" for name, values in loads.items())
    )
    print(
        f"{len(rows):,} request rows of {REQUEST_MONTH}, one per request; per server "
        f"{args.rounds} start(s), each with {args.warmup:g} s of warm-up, then {args.seconds:g} s "
        f"per client count; total {total:.0f} s (set-up {setup_seconds:.0f} s); {SANITY_ROWS} "
        f"rows answered with identical probabilities by {', '.join(answers)}"
    )
    print(
        "the model per row, in-process, one thread (medians of "
        f"{COST_ROWS} rows): "
        + ", ".join(f"{part} {milliseconds(seconds)}" for part, seconds in cost.items())
        + "\n"
    )
    print("| server | clients | requests | req/s | p50 | p99 | server CPU | load generator |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    table: list[dict[str, Any]] = []
    for name, runs in results.items():
        for run in runs:
            row: dict[str, Any] = {
                "server": name,
                "clients": run.clients,
                "requests": len(run.latencies),
                "rate": run.rate,
                "p50": run.percentile(50),
                "p99": run.percentile(99),
                "server_cores": run.server_cores,
                "generator_cores": run.generator_cores,
            }
            table.append(row)
            print(
                f"| {name} | {run.clients} | {row['requests']:,} | {run.rate:,.0f} "
                f"| {milliseconds(row['p50'])} | {milliseconds(row['p99'])} "
                f"| {run.server_cores:.2f} cores | {run.generator_cores:.2f} cores |"
            )
    figures = {(r["server"], r["clients"]): r for r in table}
    ratios = {}
    print()
    if "keel" in results:
        print(f"keel logged all {logged:,} rows it answered (logging on)")
    for clients in args.clients:
        floor = figures.get(("floor", clients))
        if floor:
            extra = [
                f"{name} {(figures[(name, clients)]['p50'] - floor['p50']) * 1000:+.1f} ms"
                for name in results
                if name != "floor"
            ]
            print(f"{clients} client(s): p50 over the floor's: {', '.join(extra)}")
    for clients in args.clients:
        keel, floor, peer = (figures.get((n, clients)) for n in ("keel", "floor", "mlflow"))
        if keel and floor:
            ratio = keel["p50"] / floor["p50"]
            ratios[f"p50_keel_over_floor_{clients}"] = ratio
            met = "met" if ratio <= P50_TARGET else "missed"
            print(
                f"{clients} client(s): keel p50 / floor p50 = {ratio:.2f} "
                f"(target <= {P50_TARGET:g}: {met})"
            )
        target = THROUGHPUT_TARGETS.get(clients)
        for name in ("keel", "keel-workers"):
            ours = figures.get((name, clients))
            if ours and peer:
                ratio = ours["rate"] / peer["rate"]
                ratios[f"rate_{name.replace('-', '_')}_over_mlflow_{clients}"] = ratio
                verdict = (
                    ""
                    if target is None
                    else f" (target >= {target:g}: " + ("met)" if ratio >= target else "missed)")
                )
                print(f"{clients} client(s): {name} req/s / MLflow req/s = {ratio:.1f}{verdict}")
        workers = figures.get(("keel-workers", clients))
        if keel and workers:
            ratio = workers["rate"] / keel["rate"]
            ratios[f"rate_workers_over_one_{clients}"] = ratio
            verdict = (
                f" (target >= {WORKERS_TARGET:g}: {'met' if ratio >= WORKERS_TARGET else 'missed'})"
                if clients == 8
                else ""
            )
            print(f"{clients} client(s): keel-workers req/s / keel req/s = {ratio:.2f}{verdict}")
    if args.json:
        document = {
            "machine": machine,
            "model": args.model,
            "table": table,
            "ratios": ratios,
            "model_cost": cost,
            "load": loads,
        }
        print(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
