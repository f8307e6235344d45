"""Two processes snapshotting the same file at the same moment: one version, no error."""

from __future__ import annotations

import multiprocessing
import queue
from pathlib import Path

import pyarrow as pa
import pytest

from keel.project import Project
from tests.data import workers
from tests.data.conftest import make_project, write_sample

pytestmark = [pytest.mark.slow, pytest.mark.load]

SPAWN = multiprocessing.get_context("spawn")
PROCESSES = 2
TIMEOUT_S = 180


def test_two_processes_snapshotting_one_file_record_one_version(
    tmp_path: Path, flights_table: pa.Table
) -> None:
    folder = tmp_path / "project"
    make_project(folder).close()
    source = write_sample(flights_table.slice(0, 50_000), folder / "flights.csv")
    barrier = SPAWN.Barrier(PROCESSES)
    results = SPAWN.Queue()
    processes = [
        SPAWN.Process(
            target=workers.snapshot_together,
            args=(str(folder), str(source), f"worker-{n}", barrier, results),
        )
        for n in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = {}
    try:
        for _ in processes:
            user, outcome, error = results.get(timeout=TIMEOUT_S)
            assert error is None, f"{user}:\n{error}"
            outcomes[user] = outcome
    except queue.Empty:
        pytest.fail(f"a process did not finish within {TIMEOUT_S} s")
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        results.close()
        results.join_thread()
    ids = {version_id for version_id, _ in outcomes.values()}
    assert len(ids) == 1
    # Exactly one of them recorded the version; the other found it (or lost the race to add).
    assert sorted(reused for _, reused in outcomes.values()) == [False, True]
    with Project.open(folder, env={"KEEL_USER": "ana"}) as project:
        assert project.metadata.datasets.count() == 1
        version = project.metadata.datasets.resolve("latest")
        assert str(version.id) in ids
        assert project.metadata.artifacts.referenced() == {version.parquet, version.profile}
