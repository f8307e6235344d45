"""Replicas: throughput of 1 and 3 `keel serve` replicas sharing one PostgreSQL and one S3,
against as many `mlflow models serve` replicas, and whether keel's prediction log keeps up
(rows durable in PostgreSQL per second against rows served per second).

    python benchmarks/serving_replicas.py [--seconds 8] [--warmup 3] [--clients 8,32]
                                          [--replicas 1,3] [--servers keel,mlflow]
                                          [--keep DIR] [--json]

The shared stores, started by this script for the run and removed after it:

- PostgreSQL: a throwaway cluster from the newest /usr/lib/postgresql/*/bin (initdb on
  127.0.0.1; run as the `postgres` user when this script runs as root), with the server's
  default durability (fsync and synchronous_commit on): a row counted below survives a crash.
- S3: moto's server (`moto_server`, its own process) on loopback, one bucket.

The model: the flights example (features.py and train.py, HistGradientBoostingClassifier
with 200 iterations x 31 leaves, seed 7), trained on January 2013 into the shared stores
(metadata in PostgreSQL, artifacts in S3) and moved to `production`. MLflow's copy is built
as in benchmarks/serving.py: the same training in a local project, saved as a pyfunc calling
the same features.py (the shared project takes its code and keel.yaml from that project).
Before timing, every replica of every server answers the same 200 rows with identical
probabilities (exact float equality), so all serve the same fitted model. Requests are
complete raw rows of May 2013, one row per request, sent in turn from a pool of 2,000.

What each replica runs, as a user runs it:

- keel: `keel -C COPY serve --port N --workers 1`, each replica on its own copy of the
  project folder (without `.keel/`), with KEEL_DB_URL (the PostgreSQL database),
  KEEL_ARTIFACTS (s3://bucket/prefix) and AWS_* (moto's endpoint and keys) set, and the
  public signing key mounted through KEEL_KEYS, as pods behind a load balancer get them.
  POST /predict {"records": [row]}. Prediction logging on (keel.yaml's defaults): each
  replica answers once the row is fsynced to its own spool and commits rows to the shared
  `predictions` table every 200 ms.
- MLflow: `mlflow models serve -m DIR --env-manager local --port N` (uvicorn, one worker),
  POST /invocations {"dataframe_records": [row]}, OMP_NUM_THREADS=1. MLflow logs no
  predictions: it has nothing to compare with keel's log.

Each server is started with R replicas (`--replicas`, one start per R), given `--warmup`
seconds of load at the largest client count (untimed), then `--seconds` of load at each
client count. The load generator is this process: C threads (`--clients`), each on its own
keep-alive HTTP/1.1 connection to one replica, the clients spread round-robin over the
replicas (client i to replica i mod R), as a load balancer that keeps connections alive
does; each thread sends its next request when the previous answer has arrived. Latency runs
from the first byte sent to the last byte received; req/s is the requests answered divided
by the time from the first request sent to the last answer. Every answer must be 200; any
other answer or a broken connection counts as a failure (the connection is opened again).

The prediction log, for keel: while each load runs, a thread of this process counts the rows
of the `predictions` table every 0.25 s (`SELECT count(*)`, one psycopg connection), and
- rows/s served is the rows answered over the load's time (one row per request);
- rows/s durable is the least-squares slope of that count over the same time;
- the lag is how long after the last answer the count reached every row answered so far
  (polled every 20 ms then).
Also per load, from /proc over the load's time: the cores the replicas used (every process
of theirs), and PostgreSQL's (the postmaster and its backends, this script's counting
included); and for keel the requests per model call (adaptive batching: the replicas'
`keel_model_batch_requests` in /metrics).
After the replicas have stopped, the table must hold exactly the prediction ids the servers
answered with: each once (COUNT(DISTINCT id) = COUNT(*) = rows answered), none missing.

`--keep DIR` keeps the local project, the MLflow model, the replicas' folders and logs in
DIR, and reuses the local project and the MLflow model when run again; PostgreSQL and S3
are new every run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import machine_summary
from serving import (
    ENV,
    MODEL,
    SERVERS,
    TRAIN_UNTIL,
    Connection,
    Load,
    child_env,
    encode_requests,
    free_port,
    make_project,
    milliseconds,
    request_rows,
    running,
    save_mlflow_model,
    server_command,
)

KEEL = Path(sys.executable).with_name("keel")
MOTO = Path(sys.executable).with_name("moto_server")
SANITY_ROWS = 200
POLL_EVERY = 0.25  # seconds between counts of the log's rows while a load runs
LAG_POLL_EVERY = 0.02  # and after it, until every answered row is there
LAG_TIMEOUT = 120.0
BUCKET = "keel-bench"
DATABASE = "keel"
#: initdb refuses to run as root; this unprivileged account owns the cluster then.
POSTGRES_USER = "postgres"
#: moto accepts any keys.
S3_KEY, S3_SECRET, S3_REGION = "keel-bench-key", "keel-bench-secret", "us-east-1"


# --- the shared stores: a throwaway PostgreSQL cluster and moto's S3 server ---------------------


@dataclass
class Postgres:
    """A PostgreSQL cluster in a temp folder on 127.0.0.1, with one empty database."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="keel-bench-pg-")))
    port: int = 0
    started: bool = False
    bin_dir: Path = Path()
    version: str = ""

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        return int((self.root / "data" / "postmaster.pid").read_text().split("\n", 1)[0])

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def connect(self, database: str = DATABASE) -> Any:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True
        )

    def start(self) -> None:
        found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
        if not found:
            raise SystemExit(
                "no PostgreSQL in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
            )
        self.bin_dir = max(found, key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)])
        self.version = f"PostgreSQL {self.bin_dir.parent.name}"
        owner = self._owner()
        if owner is not None:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        data = str(self.root / "data")
        # --no-sync: only initdb's own files; the server runs with fsync on.
        self._run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync")
        self.port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={shlex.quote(str(self.root))}"
        )
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start")
        self.started = True
        with self.connect("postgres") as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def stop(self) -> None:
        if self.started:
            data = str(self.root / "data")
            self._run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def _owner(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(POSTGRES_USER)
        except KeyError:
            raise SystemExit(
                f"running as root, and PostgreSQL refuses root: create the '{POSTGRES_USER}' user"
            ) from None

    def _run(self, tool: str, *args: str) -> None:
        owner = self._owner()
        privileges: dict[str, Any] = {}
        if owner is not None:
            privileges = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(self.bin_dir / tool), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **privileges,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed:\n{result.stdout}{result.stderr}")


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    cluster = Postgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@contextlib.contextmanager
def s3(logs: Path) -> Iterator[str]:
    """moto's S3 server in its own process, with an empty bucket; yields its endpoint."""
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with (logs / "moto.log").open("wb") as output:
        process = subprocess.Popen(
            [str(MOTO), "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {logs / 'moto.log'}")
                time.sleep(0.1)
            client = boto3.client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id=S3_KEY,
                aws_secret_access_key=S3_SECRET,
                region_name=S3_REGION,
            )
            client.create_bucket(Bucket=BUCKET)
            yield endpoint
        finally:
            process.terminate()
            process.wait(timeout=30)


# --- the model in the shared stores ------------------------------------------------------------


def publish(folder: Path, local: Path, env: dict[str, str]) -> None:
    """The flights example trained into the shared stores, version 1 in production: what
    benchmarks/serving.py's make_project does in the `local` project, with its code and
    keel.yaml (so that keel and MLflow run the same features.py, even when --keep kept a
    project made from an older example)."""
    from keel.pipeline.train import train
    from keel.project import Project

    Project.init(folder, example="flights", env=env).close()
    for name in ("keel.yaml", "features.py", "train.py"):
        shutil.copy(local / name, folder / name)
    with Project.open(folder, env=env) as project:
        result = train(project, as_of=TRAIN_UNTIL)
        assert result.registered is not None and result.registered.version == 1
        project.metadata.releases.move_alias(
            MODEL, "production", 1, expected_holder=None, actor="bench", reason="benchmark"
        )


# --- the load generator, over replicas ---------------------------------------------------------


@dataclass
class Replicas:
    """The running replicas of one server: their ports and each one's encoded requests."""

    name: str
    ports: list[int]
    requests: list[list[bytes]]


@dataclass
class Timed:
    """One load: the answers' latencies, the bodies (keel's carry the prediction ids), and
    when it ran, on time.perf_counter's clock."""

    load: Load
    bodies: list[bytes]
    began: float
    ended: float


def run_load(replicas: Replicas, clients: int, seconds: float, *, keep: bool) -> Timed:
    """`clients` threads, client i on a keep-alive connection to replica i mod R, each
    sending its next request when its answer has arrived."""
    result = Load(clients)
    count = len(replicas.ports)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    bodies: list[list[bytes]] = [[] for _ in range(clients)]
    connections = [Connection(replicas.ports[i % count]) for i in range(clients)]
    start = threading.Barrier(clients + 1)
    ends = [0.0] * clients
    deadline = 0.0

    def client(index: int) -> None:
        replica = index % count
        requests, connection = replicas.requests[replica], connections[index]
        turn = index
        start.wait()
        while (sent := time.perf_counter()) < deadline:
            try:
                status, body = connection.exchange(requests[turn % len(requests)])
            except (OSError, RuntimeError) as exc:  # counted, then connected again
                result.errors.append(f"replica {replica}: {type(exc).__name__}: {exc}")
                connection.close()
                try:
                    connection = connections[index] = Connection(replicas.ports[replica])
                except OSError:
                    return
                continue
            done = time.perf_counter()
            ends[index] = done
            turn += clients
            if status != 200:
                result.errors.append(f"replica {replica}: {status}: {body[:300]!r}")
                continue
            latencies[index].append(done - sent)
            if keep:
                bodies[index].append(body)

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
    ended = max(ends)
    result.seconds = ended - began
    result.latencies = [x for each in latencies for x in each]
    return Timed(result, [b for each in bodies for b in each], began, ended)


def answer_rows(replicas: Replicas, rows: int) -> tuple[list[list[float]], list[bytes]]:
    """Each replica's probabilities for the first `rows` requests, and the answers."""
    found, bodies = [], []
    for port, requests in zip(replicas.ports, replicas.requests, strict=True):
        connection = Connection(port)
        try:
            probabilities = []
            for request in requests[:rows]:
                status, body = connection.exchange(request)
                if status != 200:
                    raise RuntimeError(f"{replicas.name} answered {status}: {body[:500]!r}")
                probabilities.append(float(json.loads(body)["predictions"][0]["probability"]))
                bodies.append(body)
            found.append(probabilities)
        finally:
            connection.close()
    return found, bodies


def prediction_ids(bodies: Sequence[bytes]) -> list[str]:
    return [p["id"] for body in bodies for p in json.loads(body)["predictions"]]


def cpu_seconds(groups: Sequence[int] = (), parent: int | None = None) -> float:
    """CPU seconds used so far by every process of these process groups (the replicas and
    the processes they started: `mlflow models serve` runs uvicorn as a child), or by
    `parent` and its children (PostgreSQL's postmaster and its backends)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            text = stat.read_text()
            pid = int(text.split(" ", 1)[0])
            # After "pid (comm) ": state, ppid, pgrp, ... utime and stime are the 12th and 13th.
            fields = text[text.rindex(")") + 2 :].split()
            if int(fields[2]) in groups or parent in (pid, int(fields[1])):
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def model_calls(ports: Sequence[int]) -> tuple[float, float]:
    """Requests answered and model calls made so far by keel's replicas, from their
    /metrics (`keel_model_batch_requests`: requests per model call)."""
    requests = calls = 0.0
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        for line in text.splitlines():
            if line.startswith("keel_model_batch_requests_sum"):
                requests += float(line.rsplit(" ", 1)[1])
            elif line.startswith("keel_model_batch_requests_count"):
                calls += float(line.rsplit(" ", 1)[1])
    return requests, calls


# --- the prediction log, watched --------------------------------------------------------------


class RowCounter:
    """Counts the `predictions` table's rows every POLL_EVERY seconds while running."""

    def __init__(self, database: Postgres) -> None:
        self.database = database
        self.conn = database.connect()
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def count(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM predictions").fetchone()
        return int(row[0])

    def __enter__(self) -> RowCounter:
        self.samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _poll(self) -> None:
        while True:
            self.samples.append((time.perf_counter(), self.count()))
            if self._stop.wait(POLL_EVERY):
                return

    def slope(self, began: float, ended: float) -> float:
        """Rows per second: the least-squares slope of the count over [began, ended]."""
        window = [(t, n) for t, n in self.samples if began <= t <= ended]
        if len(window) < 2:
            return float("nan")
        mean_t = sum(t for t, _ in window) / len(window)
        mean_n = sum(n for _, n in window) / len(window)
        spread = sum((t - mean_t) ** 2 for t, _ in window)
        return sum((t - mean_t) * (n - mean_n) for t, n in window) / spread

    def wait_for(self, expected: int, since: float) -> float:
        """Seconds from `since` until the table holds `expected` rows."""
        deadline = time.perf_counter() + LAG_TIMEOUT
        while (found := self.count()) < expected:
            if time.perf_counter() > deadline:
                raise AssertionError(f"the log holds {found} of {expected} answered rows")
            time.sleep(LAG_POLL_EVERY)
        if found > expected:
            raise AssertionError(f"the log holds {found} rows, {expected} were answered")
        return max(0.0, time.perf_counter() - since)

    def close(self) -> None:
        self.conn.close()


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Measured:
    server: str
    replicas: int
    clients: int
    load: Load
    durable: float | None = None  # rows/s into PostgreSQL over the load's time
    lag: float | None = None  # seconds from the last answer until every row was there
    server_cores: float = 0.0  # CPU seconds of every replica over the load's time
    per_call: float | None = None  # requests per model call (keel's adaptive batching)
    database_cores: float | None = None  # PostgreSQL's CPU over the load's time

    def row(self) -> dict[str, Any]:
        load = self.load
        return {
            "server": self.server,
            "replicas": self.replicas,
            "clients": self.clients,
            "requests": len(load.latencies),
            "rate": load.rate,
            "p50": load.percentile(50),
            "p99": load.percentile(99),
            "failures": len(load.errors),
            "rows_served_per_s": load.rate,
            "rows_durable_per_s": self.durable,
            "log_lag_s": self.lag,
            "server_cores": self.server_cores,
            "requests_per_model_call": self.per_call,
            "postgresql_cores": self.database_cores,
            "generator_cores": load.generator_cores,
        }


@dataclass
class Run:
    measured: list[Measured] = field(default_factory=list)
    #: The sanity rows' probabilities, from the first replica started: every other must agree.
    reference: list[float] | None = None
    checked: list[str] = field(default_factory=list)  # the starts whose replicas agreed
    answered_ids: list[str] = field(default_factory=list)
    loads: dict[str, str] = field(default_factory=dict)


def bench(
    name: str,
    count: int,
    commands: list[list[str]],
    env: dict[str, str],
    rows: list[dict[str, Any]],
    logs: Path,
    args: argparse.Namespace,
    run: Run,
    counter: RowCounter | None,
) -> None:
    """Start `count` replicas of `name`, check their answers, load them at each client count."""
    label = f"{name} x{count}"
    database = counter.database if counter is not None else None
    one, five, _ = os.getloadavg()
    run.loads[f"{label} began"] = f"{one:.2f} (5 min {five:.2f})"
    print(f"{label}: starting...", file=sys.stderr, flush=True)
    server = SERVERS[name]
    ports = [int(command[command.index("--port") + 1]) for command in commands]
    with ExitStack() as stack:
        groups = []  # each replica is its own process group (running's start_new_session)
        for n, command in enumerate(commands):
            log = logs / f"{name}-r{count}-{n}.log"
            groups.append(
                stack.enter_context(running(command, env, ports[n], server.ready, log)).pid
            )
        replicas = Replicas(name, ports, [encode_requests(server, p, rows) for p in ports])
        found, bodies = answer_rows(replicas, SANITY_ROWS)
        for n, probabilities in enumerate(found):
            if run.reference is None:
                run.reference = probabilities
            if probabilities != run.reference:
                worst = max(abs(a - b) for a, b in zip(probabilities, run.reference, strict=True))
                raise AssertionError(f"{label}, replica {n} differs (by up to {worst})")
        run.checked.append(label)
        if counter is not None:
            run.answered_ids += prediction_ids(bodies)
        warm = run_load(replicas, max(args.clients), args.warmup, keep=counter is not None)
        if counter is not None:
            run.answered_ids += prediction_ids(warm.bodies)
            counter.wait_for(len(run.answered_ids), warm.ended)
        for clients in args.clients:
            print(f"{label}: {clients} clients...", file=sys.stderr, flush=True)
            calls_before = model_calls(ports) if name == "keel" else (0.0, 0.0)
            cpu_before = cpu_seconds(groups)
            database_before = cpu_seconds(parent=database.pid) if database else 0.0
            with counter if counter is not None else contextlib.nullcontext():
                timed = run_load(replicas, clients, args.seconds, keep=counter is not None)
            cpu = cpu_seconds(groups) - cpu_before
            measured = Measured(
                name, count, clients, timed.load, server_cores=cpu / timed.load.seconds
            )
            if database is not None:
                database_cpu = cpu_seconds(parent=database.pid) - database_before
                measured.database_cores = database_cpu / timed.load.seconds
            if counter is not None:
                expected = len(run.answered_ids) + len(timed.bodies)  # one row each
                measured.lag = counter.wait_for(expected, timed.ended)
                measured.durable = counter.slope(timed.began, timed.ended)
                run.answered_ids += prediction_ids(timed.bodies)
            if name == "keel":  # after the lag: asking the replicas takes their time
                after = model_calls(ports)
                measured.per_call = (after[0] - calls_before[0]) / (after[1] - calls_before[1])
            run.measured.append(measured)


def check_exactly_once(database: Postgres, answered: list[str]) -> int:
    """The `predictions` table holds each answered prediction id once, and nothing else."""
    with database.connect() as conn:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT id) FROM predictions"
        ).fetchone()
        logged = {row[0] for row in conn.execute("SELECT id FROM predictions")}
    if len(set(answered)) != len(answered):
        raise AssertionError("keel answered with the same prediction id twice")
    if total != distinct:
        raise AssertionError(f"{total - distinct} prediction ids logged more than once")
    missing, unknown = set(answered) - logged, logged - set(answered)
    if missing or unknown or total != len(answered):
        raise AssertionError(
            f"answered {len(answered)}, logged {total}: {len(missing)} answered ids missing, "
            f"{len(unknown)} logged ids never answered"
        )
    return int(total)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per load")
    parser.add_argument("--warmup", type=float, default=3.0, help="untimed seconds per start")
    numbers = lambda text: [int(x) for x in text.split(",")]  # noqa: E731
    parser.add_argument(
        "--clients", type=numbers, default=[8, 32], help="concurrent clients (default 8,32)"
    )
    parser.add_argument(
        "--replicas", type=numbers, default=[1, 3], help="replicas per server (default 1,3)"
    )
    parser.add_argument("--servers", default="keel,mlflow", help="keel, mlflow or both")
    parser.add_argument("--keep", type=Path, help="keep the projects and logs in this folder")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.servers.split(",")]
    if not set(chosen) <= {"keel", "mlflow"} or min(args.replicas + args.clients) < 1:
        parser.error("--servers takes keel and mlflow; --replicas and --clients at least 1")

    warnings.filterwarnings("ignore")  # MLflow's chatter is not a result
    started = time.perf_counter()
    run = Run()
    one, five, _ = os.getloadavg()
    # Before the set-up's training, which itself loads the machine for the first start.
    run.loads["before set-up"] = f"{one:.2f} (5 min {five:.2f})"
    with tempfile.TemporaryDirectory(prefix="keel-bench-replicas-") as tmp, ExitStack() as stack:
        root = args.keep.resolve() if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        logs = root / "logs-replicas"
        logs.mkdir(exist_ok=True)
        local = root / "project-flights"  # benchmarks/serving.py's, reused with --keep
        if not (local / "keel.yaml").exists():
            print("set-up: training a local project...", file=sys.stderr, flush=True)
            make_project(local, "flights")
        from keel.project import Project

        with Project.open(local, env=ENV) as project:
            contract = project.metadata.models.get(MODEL, 1).inference_contract
        rows = request_rows(local, contract)
        mlflow_model = root / "mlflow-model-flights"
        if "mlflow" in chosen and not mlflow_model.exists():
            print("set-up: saving the MLflow pyfunc...", file=sys.stderr, flush=True)
            with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                save_mlflow_model(local, mlflow_model, rows)

        database = counter = None
        keel_env: dict[str, str] = {}
        if "keel" in chosen:
            print("set-up: PostgreSQL, S3, training into them...", file=sys.stderr, flush=True)
            database = stack.enter_context(postgres())
            endpoint = stack.enter_context(s3(logs))
            aws = {
                "AWS_ACCESS_KEY_ID": S3_KEY,
                "AWS_SECRET_ACCESS_KEY": S3_SECRET,
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_DEFAULT_REGION": S3_REGION,
            }
            os.environ.update(aws)  # for the S3 store of this process, while it trains
            shared_env = {
                **ENV,
                "KEEL_DB_URL": database.url,
                "KEEL_ARTIFACTS": f"s3://{BUCKET}/flights",
                **aws,
            }
            shared = root / "shared-flights"
            shutil.rmtree(shared, ignore_errors=True)
            publish(shared, local, shared_env)
            # What each pod gets: the public key only (servers verify, they never sign).
            keys = root / "mounted-keys"
            shutil.rmtree(keys, ignore_errors=True)
            keys.mkdir()
            shutil.copy(shared / ".keel" / "keys" / "signing.pub", keys / "signing.pub")
            keel_env = {**child_env(root, one_thread=False), **shared_env, "KEEL_KEYS": str(keys)}
            counter = RowCounter(database)
            stack.callback(counter.close)
        setup_seconds = time.perf_counter() - started

        for count in args.replicas:
            for name in chosen:
                ports = [free_port() for _ in range(count)]
                if name == "keel":
                    commands = []
                    for n, port in enumerate(ports):
                        copy = root / f"keel-r{count}-{n}"
                        shutil.rmtree(copy, ignore_errors=True)
                        shutil.copytree(shared, copy, ignore=shutil.ignore_patterns(".keel"))
                        serve = ["serve", "--port", str(port), "--workers", "1"]
                        commands.append([str(KEEL), "-C", str(copy), *serve])
                    bench(name, count, commands, keel_env, rows, logs, args, run, counter)
                else:
                    commands = [server_command(name, local, mlflow_model, p) for p in ports]
                    env = child_env(root, one_thread=True)
                    bench(name, count, commands, env, rows, logs, args, run, None)
        # Every replica has stopped (and flushed its log): each answered row once, no other.
        logged = check_exactly_once(database, run.answered_ids) if database else 0
    total = time.perf_counter() - started
    report(args, run, logged, total, setup_seconds, database.version if database else "")
    failures = sum(len(m.load.errors) for m in run.measured)
    if failures:
        errors = [e for m in run.measured for e in m.load.errors]
        print(f"{failures} failed requests, e.g. {errors[:3]}", file=sys.stderr)
    return 1 if failures else 0


def report(
    args: argparse.Namespace,
    run: Run,
    logged: int,
    total: float,
    setup_seconds: float,
    postgres_version: str,
) -> None:
    import mlflow
    import moto
    import sklearn

    machine = machine_summary(
        postgres_version or "no PostgreSQL",
        f"moto {moto.__version__}",
        f"mlflow {mlflow.__version__}",
        f"scikit-learn {sklearn.__version__}",
    )
    print(f"machine: {machine}")
    print(
        "load average (this run's own set-up and previous starts included): "
        + "; ".join(f"{k} {v}" for k, v in run.loads.items())
    )
    print(
        f"one row per request (req/s is rows/s served); per start {args.warmup:g} s of "
        f"warm-up, then {args.seconds:g} s per client count; total {total:.0f} s "
        f"(set-up {setup_seconds:.0f} s); "
        f"{SANITY_ROWS} rows answered with identical probabilities by every replica of "
        + ", ".join(run.checked)
        + "\n"
    )
    print(
        "| server | replicas | clients | requests | req/s | p50 | p99 | failures "
        "| rows/s durable | durable / served | log lag | server cores | PostgreSQL cores "
        "| requests / call |"
    )
    print("| --- |" + " ---: |" * 13)
    table = [m.row() for m in run.measured]
    for row in table:
        per_call = (
            "-"
            if row["requests_per_model_call"] is None
            else f"{row['requests_per_model_call']:.1f}"
        )
        cores = row["postgresql_cores"]
        database = "-" if cores is None else f"{cores:.2f}"
        if row["rows_durable_per_s"] is None:
            log = "not logged | - | -"
        else:
            log = (
                f"{row['rows_durable_per_s']:,.0f} | {row['rows_durable_per_s'] / row['rate']:.2f} "
                f"| {milliseconds(row['log_lag_s'])}"
            )
        print(
            f"| {row['server']} | {row['replicas']} | {row['clients']} | {row['requests']:,} "
            f"| {row['rate']:,.0f} | {milliseconds(row['p50'])} | {milliseconds(row['p99'])} "
            f"| {row['failures']} | {log} | {row['server_cores']:.2f} | {database} | {per_call} |"
        )
    figures = {(r["server"], r["replicas"], r["clients"]): r for r in table}
    ratios: dict[str, float] = {}
    print()
    for count in args.replicas:
        for clients in args.clients:
            keel, peer = (
                figures.get(("keel", count, clients)),
                figures.get(("mlflow", count, clients)),
            )
            if keel and peer:
                ratio = keel["rate"] / peer["rate"]
                ratios[f"keel_over_mlflow_r{count}_c{clients}"] = ratio
                print(f"{count} replica(s), {clients} clients: keel / MLflow req/s = {ratio:.1f}x")
    low, high = min(args.replicas), max(args.replicas)
    if high > low:
        for name in ("keel", "mlflow"):
            for clients in args.clients:
                one, many = figures.get((name, low, clients)), figures.get((name, high, clients))
                if one and many:
                    ratio = many["rate"] / one["rate"]
                    ratios[f"{name}_r{high}_over_r{low}_c{clients}"] = ratio
                    print(f"{name}, {clients} clients: {high} replicas / {low} = {ratio:.2f}x")
    notes = [
        f"this machine has {os.cpu_count()} cores for every replica, PostgreSQL, moto and the "
        "load generator: replicas add processes, not cores, so 3 replicas cannot answer 3x "
        "one replica's requests here; the figures show what they do on the same cores",
    ]
    if logged:
        notes.append(
            f"keel's prediction log: the `predictions` table holds exactly the {logged:,} "
            "prediction ids keel answered with (warm-up and checks included), each once"
        )
    if "mlflow" in args.servers:
        notes.append("MLflow logs no predictions: it has no log to keep up")
    for note in notes:
        print(f"note: {note}")
    if args.json:
        document = {
            "machine": machine,
            "table": table,
            "ratios": ratios,
            "logged": logged,
            "load": run.loads,
        }
        print(json.dumps(document, indent=2))


if __name__ == "__main__":
    sys.exit(main())
