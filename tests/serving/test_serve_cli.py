"""`keel serve` as a user starts it: a real process that becomes ready, answers, and on
SIGTERM drains, flushes the prediction log and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from keel.predlog.read import get
from tests.serving.support import (
    KEEL,
    MODEL,
    Client,
    free_port,
    oip_request,
    open_project,
    records,
    served_copy,
    set_alias,
    wait_ready,
)


@pytest.mark.slow
def test_keel_serve_is_ready_and_flushes_the_log_on_sigterm(
    trained_template: Path, tmp_path: Path
) -> None:
    # A flush interval far beyond the test: what reaches the log is flushed by the shutdown.
    folder = served_copy(trained_template, tmp_path / "flights", log={"flush_interval": "10m"})
    with open_project(folder) as project:
        set_alias(project, "production", 1)
    rows = records(trained_template, 10)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_USER"] = "ana"
    stderr = (tmp_path / "serve.err").open("wb")
    process = subprocess.Popen(
        [KEEL, "-C", folder, "serve", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env=env,
    )
    try:
        ready = wait_ready(url, process)
        assert ready["ready"] is True and MODEL in ready["models"]  # type: ignore[operator]

        ids: list[str] = []
        with Client(url) as client:
            for start in range(0, len(rows), 2):
                pair = rows[start : start + 2]
                answer = client.post("/predict", {"records": pair})
                assert answer.status == 200, answer.text
                ids.extend(p["id"] for p in answer.json()["predictions"])
                answer = client.post(f"/v2/models/{MODEL}/infer", oip_request(pair))
                assert answer.status == 200, answer.text
                ids.extend(answer.json()["parameters"]["prediction_ids"])

        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        stopped = time.monotonic() - stopping
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        stderr.close()
    log = (tmp_path / "serve.err").read_text()
    assert "Application shutdown complete" in log, log  # the lifespan ran to its end
    assert stopped < 5, f"keel serve took {stopped:.1f} s to stop"
    assert "Traceback" not in log, log

    assert len(set(ids)) == 2 * len(rows)
    with open_project(folder) as project:
        logged = [get(project, prediction_id) for prediction_id in ids]
    assert all(p is not None for p in logged), "predictions answered before SIGTERM were lost"
    assert {(p.model, p.version, p.slot) for p in logged if p is not None} == {
        (MODEL, 1, "production")
    }

    assert code == 0, log  # a graceful stop is a clean exit, not death by the signal
