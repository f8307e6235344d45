"""`keel serve --workers N`: N processes answer on one port, each with its own models, log
writer and spool files; /metrics adds up over all of them; a promotion and a rollback reach
every worker; SIGTERM drains every worker with nothing lost; a worker that dies is replaced,
and workers do not outlive their parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from keel.predlog.read import get
from keel.server import available_cores
from tests.serving.support import (
    KEEL,
    MODEL,
    Client,
    Load,
    Probe,
    eventually,
    free_port,
    metric,
    open_project,
    records,
    serve_process,
    served_copy,
    set_alias,
    wait_ready,
)

pytestmark = [pytest.mark.slow, pytest.mark.load]

WORKERS = 2


def _workers(process: subprocess.Popen[bytes]) -> list[int]:
    """The pids of the worker processes `keel serve` started (uvicorn's supervisor spawns
    them with multiprocessing), read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == process.pid and b"spawn_main" in command and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_share_the_port_and_add_up_through_a_promotion_and_a_rollback(
    trained_template: Path, tmp_path: Path
) -> None:
    folder = served_copy(trained_template, tmp_path / "flights")
    rows = records(trained_template, 100)
    with open_project(folder) as project:
        set_alias(project, "production", 1)
    with serve_process(folder, tmp_path / "serve.err", workers=WORKERS) as (url, process):
        workers = _workers(process)
        assert len(workers) == WORKERS
        probe = Probe(url, rows[0])
        with Load(url, rows, clients=6) as load, open_project(folder) as project:
            eventually(lambda: len(load.answers) >= 60, timeout=60)
            set_alias(project, "production", 2)
            # Within seconds, every worker answers with v2, on any new connection.
            eventually(lambda: probe.all_answer(2), timeout=30)
            set_alias(project, "production", 1)
            eventually(lambda: probe.all_answer(1), timeout=30)
            eventually(lambda: sum(v == 1 for _, v, _ in load.answers[-30:]) == 30, timeout=30)
        assert not load.failures, load.failures[:3]
        assert {v for _, v, _ in load.answers} == {1, 2}

        with Client(url) as client:
            text = client.get("/metrics").text
        assert metric(text, "keel_serving_workers") == WORKERS
        # The counts of every worker, whichever answered the scrape.
        answered = len(load.answers) + probe.sent
        assert metric(text, "keel_requests_total", model=MODEL) == answered
        assert metric(text, "keel_predictions_total", model=MODEL) == answered
        assert metric(text, "keel_model_served", model=MODEL, version="1", slot="production") == 1
        assert metric(text, "keel_model_served", model=MODEL, version="2", slot="production") == 0
        assert metric(text, "keel_prediction_log_store_up") == 1

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert not any(_alive(pid) for pid in workers)

    # Every answered prediction is in the log, once, with the version that answered it.
    with open_project(folder) as project:
        for prediction_id, version, _ in load.answers:
            logged = get(project, prediction_id)
            assert logged is not None and logged.version == version
        logged_rows = sum(s.rows for s in project.metadata.predictions.stats())
    assert logged_rows == answered


def test_one_worker_per_core_by_default_replaced_when_it_dies_stopped_with_its_parent(
    trained_template: Path, tmp_path: Path
) -> None:
    folder = served_copy(trained_template, tmp_path / "flights")
    rows = records(trained_template, 5)
    with open_project(folder) as project:
        set_alias(project, "production", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_USER"] = "ana"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cores = available_cores()
    with (
        (tmp_path / "serve.err").open("wb") as stderr,
        subprocess.Popen(
            [KEEL, "-C", folder, "serve", "--port", str(port), "--json"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        ) as process,
    ):
        try:
            assert process.stdout is not None
            banner = json.loads(process.stdout.readline())
            assert banner["url"] == url
            if cores == 1:  # one process, as before: nothing else to see here
                assert "workers" not in banner
                return
            assert banner["workers"] == cores
            wait_ready(url, process)
            eventually(lambda: len(_workers(process)) == cores, timeout=60)

            first = _workers(process)[0]
            os.kill(first, signal.SIGKILL)
            # Gone (a zombie or reaped): while it exits, /proc shows it with no command line.
            eventually(lambda: not _alive(first), timeout=60)

            def workers_counted() -> float:
                with Client(url) as client:
                    return metric(client.get("/metrics").text, "keel_serving_workers")

            # Replaced, counted once the new one runs, and the dead one not at all.
            eventually(lambda: workers_counted() == cores, timeout=60)
            assert len(_workers(process)) == cores
            assert Probe(url, rows[0]).all_answer(1, times=10)

            workers = _workers(process)
            process.kill()  # no chance to stop them itself
            process.wait(timeout=30)
            eventually(lambda: not any(_alive(pid) for pid in workers), timeout=30)
        finally:
            if process.poll() is None:
                process.kill()


def test_a_bad_worker_count_is_refused_naming_the_option(trained_template: Path) -> None:
    done = subprocess.run(
        [KEEL, "-C", trained_template, "serve", "--workers", "0"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--workers" in done.stderr and "0" in done.stderr
