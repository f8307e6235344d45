"""Readiness tells the truth about the prediction log: a server whose log cannot take rows
is not ready (a load balancer stops sending it requests it would answer 503), while a store
outage that the spool carries leaves it ready."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from keel.domain.prediction import LoggedPrediction
from keel.errors import StoreError
from keel.predlog.log import PredictionLog
from keel.predlog.spool import Spool
from keel.predlog.writer import StoredPredictionLog
from keel.server import create_app
from keel.serving.app import ServingApp
from keel.web.server import run_in_thread
from tests.serving.support import (
    MODEL,
    Client,
    eventually,
    metric,
    open_project,
    records,
    served_copy,
    set_alias,
)


class _Hanging:
    """A store whose writes hang until released (a store that stopped answering)."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def add(self, rows: Sequence[LoggedPrediction]) -> None:
        self.released.wait()


class _Down:
    def add(self, rows: Sequence[LoggedPrediction]) -> None:
        raise StoreError("cannot use the metadata store: connection refused")


@contextmanager
def _served(template: Path, folder: Path, log: PredictionLog) -> Iterator[tuple[str, ServingApp]]:
    project_dir = served_copy(template, folder, shutdown_timeout="2s")
    with open_project(project_dir) as project:
        set_alias(project, "production", 1)
        app, serving = create_app(project, log=log, api=False)
        with run_in_thread(app) as url:
            yield url, serving


@pytest.mark.slow
def test_a_full_log_makes_the_server_not_ready(trained_template: Path, tmp_path: Path) -> None:
    store = _Hanging()
    log = StoredPredictionLog(store, flush_interval=0.01, max_buffer=3)  # type: ignore[arg-type]
    rows = records(trained_template, 3)
    try:
        with _served(trained_template, tmp_path / "flights", log) as (url, _), Client(url) as c:
            assert c.get("/v2/health/ready").status == 200
            assert c.post("/predict", {"records": rows}).status == 200  # fills the buffer
            ready = c.get("/v2/health/ready")
            assert ready.status == 503, ready.text
            assert ready.json()["prediction_log"] == "refusing"
            assert c.get(f"/v2/models/{MODEL}/ready").json()["ready"] is False
            assert metric(c.get("/metrics").text, "keel_prediction_log_accepting") == 0
            store.released.set()  # the store answers again: ready again
            log.flush(timeout=30)
            assert c.get("/v2/health/ready").status == 200
    finally:
        store.released.set()


@pytest.mark.slow
def test_a_spool_that_cannot_be_written_makes_a_durable_server_not_ready(
    trained_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool")
    log = StoredPredictionLog(_Down(), flush_interval=0.05, spool=spool, durable=True)  # type: ignore[arg-type]
    rows = records(trained_template, 2)
    with _served(trained_template, tmp_path / "flights", log) as (url, _), Client(url) as c:
        # The store is down, the spool takes the rows: answered, and ready.
        assert c.post("/predict", {"records": rows}).status == 200
        assert c.get("/v2/health/ready").status == 200
        # Once the writer has tried the store, /metrics says it is down, and accepting.
        eventually(
            lambda: metric(c.get("/metrics").text, "keel_prediction_log_store_up") == 0 or None
        )
        assert metric(c.get("/metrics").text, "keel_prediction_log_accepting") == 1
        assert c.get("/v2/health/ready").status == 200

        def full(fd: int, data: bytes) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr("keel.predlog.spool._write_all", full)  # a full disk
        refused = c.post("/predict", {"records": rows})
        assert refused.status == 503 and "No space left" in refused.text
        assert c.get("/v2/health/ready").status == 503
        monkeypatch.undo()
        log._last_probe = 0.0  # the next probe at once, not within the second
        assert c.get("/v2/health/ready").status == 200
