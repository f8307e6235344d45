"""What the acceptance tests share: the CLI in-process as the user types it, `keel serve` as a
real process on loopback, JSON requests to it, tritonclient against it, and request records
from raw rows.

The databases: `sqlite` is the project's embedded default; `postgresql` points KEEL_DB_URL at
a fresh database (tests/fixtures/postgres.py), for the CLI and for the server process alike.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from tests.fixtures.cli import Result

__all__ = [
    "DATABASES",
    "Server",
    "as_user",
    "eventually",
    "ok",
    "request_records",
    "serve",
    "triton_infer",
]

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
KEEL = Path(sys.executable).with_name("keel")
T = TypeVar("T")


def ok(result: Result, *codes: int) -> Result:
    """`result`, asserting its exit code (0 unless `codes` name others) with its output shown."""
    wanted = codes or (0,)
    assert result.code in wanted, f"exit {result.code}\n{result.out}\n{result.err}"
    return result


@contextmanager
def as_user(monkeypatch: pytest.MonkeyPatch, name: str) -> Iterator[None]:
    """Commands inside the block act as `name` (KEEL_USER); ana again afterwards."""
    monkeypatch.setenv("KEEL_USER", name)
    try:
        yield
    finally:
        monkeypatch.setenv("KEEL_USER", "ana")


def eventually(check: Callable[[], T | None], timeout: float = 30.0, every: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {check}")
        time.sleep(every)


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A running `keel serve`: its base URL and JSON over HTTP, and its gRPC address."""

    def __init__(
        self, url: str, process: subprocess.Popen[bytes], log: Path, grpc: str = ""
    ) -> None:
        self.url = url
        self.process = process
        self.log = log
        self.grpc = grpc

    def call(
        self,
        method: str,
        path: str,
        document: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        body = None if document is None else json.dumps(document, allow_nan=False).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        request = urllib.request.Request(  # noqa: S310 - an http URL on loopback
            self.url + path, body, sent, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def post(self, path: str, document: Any, headers: dict[str, str] | None = None) -> Any:
        status, answer = self.call("POST", path, document, headers)
        assert status == 200, f"{path} answered {status}: {answer}\n{self.stderr()}"
        return answer

    def get(self, path: str) -> Any:
        status, answer = self.call("GET", path)
        assert status == 200, f"{path} answered {status}: {answer}"
        return answer

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@contextmanager
def serve(folder: Path, log: Path) -> Iterator[Server]:
    """`keel serve --grpc-port` as a user starts it, in its own process, with this test's
    KEEL_* settings (its database included); stopped with SIGTERM on leaving."""
    port, grpc_port = _free_port(), _free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [KEEL, "-C", folder, "serve", "--port", str(port), "--grpc-port", str(grpc_port)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=dict(os.environ),
        )
        server = Server(url, process, log, f"127.0.0.1:{grpc_port}")
        try:
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, f"keel serve exited:\n{server.stderr()}"
                try:
                    status, _ = server.call("GET", "/v2/health/ready")
                    if status == 200:
                        break
                except (urllib.error.URLError, ConnectionError):
                    pass
                assert time.monotonic() < deadline, f"keel serve not ready:\n{server.stderr()}"
                time.sleep(0.2)
            yield server
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _plain(value: Any) -> Any:
    """A value as a JSON request carries it: times and dates as ISO strings, NaN as null."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    return value


def request_records(rows: Any, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """JSON request records of a pyarrow table or pandas frame of raw rows."""
    listed = rows.to_pylist() if hasattr(rows, "to_pylist") else rows.to_dict("records")
    return [{k: _plain(v) for k, v in row.items() if k not in drop} for row in listed]


def triton_infer(
    url: str, model: str, records: list[dict[str, Any]], *, grpc: bool = False
) -> dict[str, list[Any]]:
    """The outputs NVIDIA's tritonclient gets for `records` with its defaults (binary tensors
    both ways over HTTP, raw contents over gRPC: `url` is then the gRPC address), its inputs
    typed as the served model's metadata declares them; every record must have every input
    non-null."""
    if grpc:
        import tritonclient.grpc as triton
    else:
        import tritonclient.http as triton  # type: ignore[no-redef]

    client = triton.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        assert client.is_server_ready() and client.is_model_ready(model)
        metadata = client.get_model_metadata(model, as_json=True) if grpc else None
        metadata = metadata or client.get_model_metadata(model)
        inputs = []
        for spec in metadata["inputs"]:
            values = [row[spec["name"]] for row in records]
            kind = spec["datatype"]
            if kind == "BYTES":
                column = np.array([str(v) for v in values], dtype=object)
            elif kind.startswith("FP"):
                column = np.array(values, dtype=np.float64 if kind == "FP64" else np.float32)
            elif kind == "BOOL":
                column = np.array(values, dtype=bool)
            else:
                column = np.array(values, dtype=np.int64)
            tensor = triton.InferInput(spec["name"], [len(records)], kind)
            tensor.set_data_from_numpy(column)  # binary, tritonclient's default
            inputs.append(tensor)
        names = [o["name"] for o in metadata["outputs"]]
        wanted = [triton.InferRequestedOutput(name) for name in names]
        result = client.infer(model, inputs, outputs=wanted)
        answers: dict[str, list[Any]] = {}
        for name in names:
            array = result.as_numpy(name)
            assert array is not None, name
            answers[name] = array.tolist()
        return answers
    finally:
        client.close()
