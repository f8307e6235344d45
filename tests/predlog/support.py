"""Helpers for the prediction-log tests and the processes they start.

Process bodies live here, not in test modules, so that a started child imports only keel:

    python -m tests.predlog.support crash-writer URL ACKS INTERVAL
    python -m tests.predlog.support compact PROJECT SEGMENT_ROWS
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from keel.predlog.ids import new_prediction_id
from keel.predlog.log import PredictionBatch

MODEL = "m"


def make_batch(
    rows: int = 3,
    *,
    at: datetime | None = None,
    model: str = MODEL,
    version: int = 1,
    slot: str = "production",
    seed: int = 0,
) -> PredictionBatch:
    """A batch of `rows` rows with one input of each JSON kind and two outputs."""
    moment = at or datetime.now(UTC)
    return PredictionBatch(
        ids=[new_prediction_id(moment.timestamp()) for _ in range(rows)],
        at=moment,
        model=model,
        version=version,
        slot=slot,  # type: ignore[arg-type]
        inputs={
            "distance": [seed * 100 + i for i in range(rows)],
            "dep_delay": [None if i % 3 == 2 else i / 4 for i in range(rows)],
            "carrier": ["UA" if i % 2 else "AA" for i in range(rows)],
            "weekend": [i % 2 == 0 for i in range(rows)],
            "time_hour": [f"2013-0{1 + i % 9}-01T05:00:00Z" for i in range(rows)],
        },
        outputs={"prediction": [i % 2 for i in range(rows)], "probability": [0.25] * rows},
        latency_ms=1.5,
        client_id=f"client-{seed}",
    )


def crash_writer(url: str, acks: Path, interval: float) -> None:
    """Log 5-row batches every 10 ms through the log; after each submit returns, append
    `<time.time()> <id> <id> ...` to `acks` and fsync it. Runs until killed."""
    from keel.metadata import open_metadata_store
    from keel.predlog.writer import StoredPredictionLog

    store = open_metadata_store(url)
    log = StoredPredictionLog(store.predictions, flush_interval=interval)
    descriptor = os.open(acks, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    seed = 0
    while True:
        batch = make_batch(5, seed=seed)
        log.submit(batch)
        line = f"{time.time():.6f} {' '.join(batch.ids)}\n".encode()
        os.write(descriptor, line)
        os.fsync(descriptor)
        seed += 1
        time.sleep(0.01)


def compact_forever(project_dir: Path, segment_rows: int) -> None:
    """Compact everything into small segments (the parent kills this midway)."""
    from keel.predlog.read import compact
    from keel.project import Project

    with Project.open(project_dir) as project:
        print("started", flush=True)
        compact(project, older_than=timedelta(seconds=1), segment_rows=segment_rows)
        print("done", flush=True)


def main(argv: list[str]) -> Any:
    command, *args = argv
    if command == "crash-writer":
        return crash_writer(args[0], Path(args[1]), float(args[2]))
    if command == "compact":
        return compact_forever(Path(args[0]), int(args[1]))
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
