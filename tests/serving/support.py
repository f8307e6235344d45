"""Helpers for the tests of `keel serve` on a real server on loopback: a served copy of the
trained flights project, request rows, a keep-alive HTTP client, and Prometheus parsing.

Plain functions and context managers (no fixtures), so each test module picks its own
fixture scope: the bad-input catalogue shares one server across its cases, the others
start one per test.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pyarrow.parquet as pq
from prometheus_client.parser import text_string_to_metric_families

from keel.predlog.writer import open_prediction_log
from keel.project import Project
from keel.server import GrpcListen, create_app
from keel.serving.app import ServingApp
from keel.web.server import run_in_thread
from tests.fixtures.trained import MODEL, write_spec

__all__ = [
    "DATATYPES",
    "MODEL",
    "Answer",
    "Client",
    "eventually",
    "metric",
    "numpy_column",
    "oip_request",
    "open_project",
    "records",
    "serve",
    "serve_process",
    "served_copy",
    "set_alias",
]

ENV = {"KEEL_USER": "ana"}

#: The OIP datatype each input of the flights model is sent as (what its metadata declares).
DATATYPES = {
    **dict.fromkeys(
        (
            "year",
            "month",
            "day",
            "hour",
            "minute",
            "sched_dep_time",
            "sched_arr_time",
            "flight",
            "distance",
        ),
        "INT64",
    ),
    **dict.fromkeys(("carrier", "tailnum", "origin", "dest", "time_hour"), "BYTES"),
    **dict.fromkeys(
        (
            "temp",
            "dewp",
            "humid",
            "wind_dir",
            "wind_speed",
            "wind_gust",
            "precip",
            "pressure",
            "visib",
        ),
        "FP64",
    ),
}

T = TypeVar("T")


def served_copy(
    template: Path, folder: Path, *, release: dict[str, object] | None = None, **serving: object
) -> Path:
    """A private copy of the trained project with keel.yaml's `serving:` (and `release:`)
    sections set."""
    shutil.copytree(template, folder)
    write_spec(folder, release, serving=serving)
    return folder


def open_project(folder: Path) -> Project:
    return Project.open(folder, env=ENV)


def set_alias(project: Project, alias: str, version: int) -> None:
    """Move `alias` to `version` through the store's compare-and-set, as an operator would."""
    releases = project.metadata.releases
    releases.move_alias(
        MODEL,
        alias,
        version,
        expected_holder=releases.holder(MODEL, alias),
        actor="ana",
        reason=f"test: {alias} -> v{version}",
    )


@contextmanager
def serve(project: Project, *, grpc: bool = False) -> Iterator[tuple[str, ServingApp]]:
    """The project's serving app, with its real prediction log, on a real uvicorn server on
    loopback: yields the base URL and the app's state. Leaving the block shuts the server
    down, which closes (flushes) the prediction log. With `grpc`, the gRPC endpoint listens
    too, on a free port: `serving.listening["grpc"]`."""
    listen = GrpcListen("127.0.0.1", 0) if grpc else None
    app, serving = create_app(project, log=open_prediction_log(project), grpc=listen)
    with run_in_thread(app) as url:
        yield url, serving


KEEL = Path(sys.executable).with_name("keel")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(
    url: str, process: subprocess.Popen[bytes], timeout: float = 90.0
) -> dict[str, object]:
    """`/v2/health/ready`'s document once the server answers it, failing when the process
    exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"keel serve exited with {process.returncode}"
        try:
            with urllib.request.urlopen(url + "/v2/health/ready", timeout=5) as response:  # noqa: S310 - loopback
                document: dict[str, object] = json.loads(response.read())
                return document
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError(f"keel serve was not ready within {timeout} s")


@contextmanager
def serve_process(
    folder: Path, stderr_to: Path, *, workers: int = 1, env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`keel serve --workers N` as a user starts it, in its own process (so clients in the
    test process do not share its interpreter lock), on a free loopback port, with `env`'s
    KEEL_* settings (KEEL_USER ana by default); yields the base URL once it is ready and the
    process. Leaving the block stops it with SIGTERM (SIGKILL after 30 s); its stderr is
    kept in `stderr_to`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    environ.update(env or {"KEEL_USER": "ana"})
    with stderr_to.open("wb") as stderr:
        process = subprocess.Popen(
            [KEEL, "-C", folder, "serve", "--port", str(port), "--workers", str(workers)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=environ,
        )
        try:
            wait_ready(url, process)
            yield url, process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@cache
def _complete_rows(template: Path) -> list[dict[str, Any]]:
    table = pq.read_table(template / "raw.parquet").drop(["late"])
    rows = []
    for row in table.to_pylist():
        # OIP clients cannot send a null in a numeric tensor (NaN is not JSON).
        if None in row.values():
            continue
        row["time_hour"] = row["time_hour"].isoformat()
        rows.append(row)
    return rows


def records(template: Path, count: int, *, start: int = 0) -> list[dict[str, Any]]:
    """`count` request records (every input present and non-null) from the training data."""
    rows = _complete_rows(template)
    assert start + count <= len(rows)
    return [dict(row) for row in rows[start : start + count]]


def numpy_column(values: list[Any], datatype: str) -> Any:
    """A column of request values as the numpy array a tritonclient input takes."""
    import numpy as np

    if datatype == "BYTES":
        return np.array(values, dtype=object)
    return np.array(values, dtype=np.int64 if datatype == "INT64" else np.float64)


def oip_request(rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """An OIP v2 inference request: one input tensor per column (MLServer's pandas codec)."""
    inputs = [
        {"name": name, "shape": [len(rows)], "datatype": datatype, "data": [r[name] for r in rows]}
        for name, datatype in DATATYPES.items()
    ]
    return {"inputs": inputs, **extra}


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One keep-alive HTTP/1.1 connection to the server (reopened if the server closed it)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        self._host, self._port, self._timeout = parts.hostname, parts.port, timeout
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(
                self._host, self._port, timeout=self._timeout
            )
        return self._connection

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        chunked: bool = False,
    ) -> Answer:
        """Send a request; `chunked` sends the body in 4 KiB chunks without Content-Length."""
        connection = self._connect()
        sent = {"Content-Type": "application/json", **(headers or {})}
        try:
            if chunked and body is not None:
                chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
                connection.request(method, path, body=chunks, headers=sent, encode_chunked=True)
            else:
                connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            answer = Answer(response.status, dict(response.headers), response.read())
        except Exception:
            self.close()
            raise
        if response.will_close:
            self.close()
        return answer

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, document: Any) -> Answer:
        return self.request("POST", path, json.dumps(document, allow_nan=False).encode())

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def metric(text: str, sample: str, **labels: str) -> float:
    """The sum of the Prometheus samples named `sample` whose labels include `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == sample and all(item.labels.get(k) == v for k, v in labels.items()):
                total += item.value
    return total


def eventually(check: Callable[[], T | None], timeout: float = 10.0, every: float = 0.05) -> T:
    """The first truthy result of `check`, polled until `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {check}")
        time.sleep(every)


class Probe:
    """One-row requests on new connections (any worker may take each), counted."""

    def __init__(self, url: str, row: dict[str, Any]) -> None:
        self.url, self.row, self.sent = url, row, 0

    def version(self) -> int:
        with Client(self.url) as client:
            answer = client.post("/predict", {"records": [self.row]})
        self.sent += 1
        assert answer.status == 200, answer.text
        return int(answer.json()["version"])

    def all_answer(self, version: int, times: int = 12) -> bool:
        return all(self.version() == version for _ in range(times))


class Load:
    """Clients sending one-row `/predict` requests until stopped, client n to `urls[n %
    len(urls)]`, on a new connection every 5 requests; what each answer was (prediction
    id, version, slot) and the failures."""

    def __init__(self, urls: str | list[str], rows: list[dict[str, Any]], clients: int) -> None:
        urls = [urls] if isinstance(urls, str) else urls
        self.answers: list[tuple[str, int, str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(urls[n % len(urls)], rows, n))
            for n in range(clients)
        ]

    def _client(self, url: str, rows: list[dict[str, Any]], number: int) -> None:
        turn = number
        while not self._stop.is_set():
            try:
                # A new connection now and then, so that every worker gets some.
                with Client(url) as client:
                    for _ in range(5):
                        answer = client.post("/predict", {"records": [rows[turn % len(rows)]]})
                        turn += 1
                        if answer.status != 200:
                            self.failures.append(f"{answer.status}: {answer.text[:200]}")
                            continue
                        document = answer.json()
                        (prediction,) = document["predictions"]
                        answered = (prediction["id"], int(document["version"]), document["slot"])
                        with self._lock:
                            self.answers.append(answered)
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.failures.append(repr(exc))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
