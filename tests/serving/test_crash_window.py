"""SIGKILL of a process logging predictions loses at most the stated window.

A real separate process logs 5-row batches every 10 ms through `StoredPredictionLog` and,
after each `submit` returns (the acknowledgement a server gives before answering), appends
the ids and the time to a file it fsyncs. It is killed with SIGKILL mid-stream. Every id
acknowledged more than `flush_interval + margin` before the kill must be in the log; the
margin covers one commit and scheduling on a loaded machine (docs/serving.md states the
window: flush_interval plus the commit in progress).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keel.metadata import open_metadata_store

pytestmark = [pytest.mark.load, pytest.mark.timed]

ROOT = Path(__file__).parents[2]
INTERVAL = 0.2  # serving.log.flush_interval's default
MARGIN = 0.3  # one commit plus scheduling delays on a shared two-core machine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keel' / 'metadata.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


def _acknowledged(path: Path) -> list[tuple[float, list[str]]]:
    acks = []
    for line in path.read_text().split("\n")[:-1]:  # the last line may be cut by the kill
        stamp, *ids = line.split()
        acks.append((float(stamp), ids))
    return acks


@pytest.mark.slow
@pytest.mark.parametrize("run_for", [1.5, 2.3])
def test_sigkill_loses_at_most_the_flush_interval(
    metadata_url: str, tmp_path: Path, run_for: float
) -> None:
    open_metadata_store(metadata_url).close()  # migrated before the writer starts
    acks = tmp_path / "acks.txt"
    command = [sys.executable, "-m", "tests.predlog.support", "crash-writer"]
    with subprocess.Popen(
        [*command, metadata_url, str(acks), str(INTERVAL)], cwd=ROOT, env=dict(os.environ)
    ) as child:
        deadline = time.monotonic() + 60
        while not acks.exists() or acks.stat().st_size == 0:
            assert child.poll() is None, "the writer died before logging anything"
            assert time.monotonic() < deadline, "the writer never started logging"
            time.sleep(0.05)
        time.sleep(run_for)
        killed_at = time.time()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    acknowledged = _acknowledged(acks)
    assert len(acknowledged) > 50  # it did run at its steady rate for a while

    with open_metadata_store(metadata_url) as store:
        cutoff = killed_at - INTERVAL - MARGIN
        must_be_there = [i for stamp, ids in acknowledged if stamp < cutoff for i in ids]
        missing = [i for i in must_be_there if store.predictions.get(i) is None]
        assert not missing, f"{len(missing)} rows acknowledged before the window were lost"
        # What is lost lies within the window (reported for the record, not asserted).
        lost = [
            killed_at - stamp
            for stamp, ids in acknowledged
            if store.predictions.get(ids[0]) is None
        ]
        assert all(age < INTERVAL + MARGIN for age in lost)
        total = sum(s.rows for s in store.predictions.stats())
        assert total >= len(must_be_there)
