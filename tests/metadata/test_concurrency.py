"""Several OS processes writing one database at once: nothing lost, nobody refused."""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from keel.metadata import open_metadata_store
from keel.metadata.sql.engine import create_metadata_engine
from keel.metadata.sql.schema import artifact_holders, artifacts
from tests.metadata import helpers

pytestmark = [pytest.mark.slow, pytest.mark.load]

SPAWN = multiprocessing.get_context("spawn")
WORKERS = 2
PER_WORKER = 300
OPENERS = 3
TIMEOUT_S = 120


def _run_together(bodies: list[tuple[str, Callable[..., None], tuple[Any, ...]]]) -> None:
    """Start one process per body and fail with the first child's traceback, if any."""
    results = SPAWN.Queue()
    processes = [
        SPAWN.Process(target=helpers.report, args=(results, name, body, *args), name=name)
        for name, body, args in bodies
    ]
    for process in processes:
        process.start()
    failures = []
    try:
        for _ in processes:
            name, error = results.get(timeout=TIMEOUT_S)
            if error is not None:
                failures.append(f"{name}:\n{error}")
    except queue.Empty:
        failures.append(f"a process did not finish within {TIMEOUT_S} s")
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        results.close()
        results.join_thread()
    assert not failures, "\n".join(failures)


def _count(url: str, table: Any) -> int:
    engine = create_metadata_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()
    finally:
        engine.dispose()


def test_concurrent_writers_lose_nothing(metadata_url: str) -> None:
    open_metadata_store(metadata_url).close()
    barrier = SPAWN.Barrier(WORKERS)
    _run_together(
        [
            (f"writer-{w}", helpers.record_many, (metadata_url, w, PER_WORKER, barrier))
            for w in range(WORKERS)
        ]
    )
    assert _count(metadata_url, artifacts) == WORKERS * PER_WORKER
    assert _count(metadata_url, artifact_holders) == WORKERS * PER_WORKER
    with open_metadata_store(metadata_url) as store:
        expected = {
            helpers.digest_of(f"{w}/{i}") for w in range(WORKERS) for i in range(PER_WORKER)
        }
        assert store.artifacts.referenced() == expected


def test_processes_opening_a_fresh_database_at_once_all_migrate_it(metadata_url: str) -> None:
    barrier = SPAWN.Barrier(OPENERS)
    _run_together(
        [(f"opener-{n}", helpers.open_fresh, (metadata_url, barrier)) for n in range(OPENERS)]
    )
    with open_metadata_store(metadata_url, upgrade=False) as store:
        assert store.revision().up_to_date


def test_holding_while_another_process_forgets_never_loses_a_held_record(
    metadata_url: str,
) -> None:
    count = 150
    open_metadata_store(metadata_url).close()
    barrier = SPAWN.Barrier(2)
    done = SPAWN.Event()
    _run_together(
        [
            ("recorder", helpers.record_then_hold, (metadata_url, count, barrier, done)),
            ("forgetter", helpers.forget_until_done, (metadata_url, count, barrier, done)),
        ]
    )
    with open_metadata_store(metadata_url) as store:
        for i in range(count):
            digest = helpers.digest_of(f"race/{i}")
            assert store.artifacts.holders(digest) == [f"test:{i}"]
            assert store.artifacts.find(digest) is not None
