"""Prediction log durability: what answering only after the rows are on disk costs.

    python benchmarks/durability.py [--seconds 5] [--clients 1 8] [--postgres URL] [--json]

Each run hands one-row requests (the flights inference contract's shape: 23 inputs, 2
outputs) to the log from `--clients` threads, back to back for `--seconds`, as the serving
app does after predicting, and measures the latency of that hand-over (what it adds to each
request) and the rows per second the clients get through. The modes, in the same run:

  buffered     keel's `serving.log.durability: buffered`: the rows are appended to memory;
               the writer commits them every flush_interval (200 ms). A hard crash loses
               what is younger than that.
  durable      keel's `durable`: also appended to the spool and answered once the spool is
               fsynced; concurrent requests share one fsync (group commit).
  fsync/req    the naive durable log, for scale: each request appends its JSON line to a
               file and fsyncs it before answering, under one lock (no group commit).

Every row of the keel modes is in the store when a run ends (checked, not timed). The store
is a fresh SQLite database (WAL, synchronous=FULL), and PostgreSQL with --postgres. Figures
are percentiles over every request of a run; the machine's load moves them, the ratios much
less.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import machine_summary
from keel.metadata import open_metadata_store
from keel.metadata.base import Predictions
from keel.predlog.ids import new_prediction_id
from keel.predlog.log import PredictionBatch
from keel.predlog.spool import Spool, encode_batch
from keel.predlog.writer import StoredPredictionLog

MODEL = "flights-delay"
MODES = ("buffered", "durable", "fsync/req")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


def request(index: int) -> PredictionBatch:
    """One request's row, shaped like the flights model's (23 inputs of its types)."""
    inputs: dict[str, list[Any]] = {
        "year": [2013],
        "month": [1 + index % 12],
        "day": [1 + index % 28],
        "dep_time": [517.0 + index % 900],
        "sched_dep_time": [515],
        "dep_delay": [2.0],
        "arr_time": [830.0],
        "sched_arr_time": [819],
        "carrier": ["UA"],
        "flight": [1545],
        "tailnum": ["N14228"],
        "origin": ["EWR"],
        "dest": ["IAH"],
        "air_time": [227.0],
        "distance": [1400],
        "hour": [5],
        "minute": [15],
        "time_hour": ["2013-01-01T10:00:00+00:00"],
        "temp": [39.02],
        "dewp": [28.04],
        "humid": [64.43],
        "wind_speed": [12.65858],
        "visib": [10.0],
    }
    return PredictionBatch(
        ids=[new_prediction_id()],
        at=datetime.now(UTC),
        model=MODEL,
        version=1,
        slot="production",
        inputs=inputs,
        outputs={"prediction": [index % 2], "probability": [0.37]},
        latency_ms=1.2,
    )


def drive(
    submit: Callable[[PredictionBatch], None], clients: int, seconds: float, think: float
) -> dict[str, Any]:
    """`clients` threads submitting for `seconds`, each request `think` seconds apart (the
    model's own time, spent outside the log); the latency of each submit."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    ids: list[list[str]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    stop = threading.Event()

    def client(n: int) -> None:
        start.wait()
        index = 0
        while not stop.is_set():
            batch = request(index)
            before = time.perf_counter()
            submit(batch)
            latencies[n].append(time.perf_counter() - before)
            ids[n].extend(batch.ids)
            index += 1
            if think:
                time.sleep(think)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = [value for values in latencies for value in values]
    return {
        "requests": len(every),
        "requests_per_s": len(every) / elapsed,
        "p50_us": _percentile(every, 50) * 1e6,
        "p99_us": _percentile(every, 99) * 1e6,
        "ids": [i for chunk in ids for i in chunk],
    }


def run_keel(
    store: Predictions, folder: Path, durable: bool, clients: int, seconds: float, think: float
) -> dict[str, Any]:
    log = StoredPredictionLog(store, spool=Spool(folder), durable=durable)
    result = drive(log.submit, clients, seconds, think)
    log.close()
    ids = result.pop("ids")
    sample = ids[:: max(1, len(ids) // 200)]
    missing = [i for i in sample if store.get(i) is None]
    assert not missing, f"{len(missing)} sampled rows are not in the store"
    return result


def run_fsync_per_request(path: Path, clients: int, seconds: float, think: float) -> dict[str, Any]:
    lock = threading.Lock()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def submit(batch: PredictionBatch) -> None:
        line = encode_batch(batch) + b"\n"
        with lock:
            os.write(descriptor, line)
            os.fsync(descriptor)

    try:
        result = drive(submit, clients, seconds, think)
    finally:
        os.close(descriptor)
    result.pop("ids")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--think-ms",
        type=float,
        default=1.0,
        help="time between one client's requests (the model's own work), 0 for none",
    )
    parser.add_argument("--postgres", help="also measure on this PostgreSQL database (URL)")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    args = parser.parse_args(argv)

    think = args.think_ms / 1000
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="keel-durability-") as tmp:
        root = Path(tmp)
        stores = {"sqlite": f"sqlite:///{root / 'keel.db'}"}
        if args.postgres:
            stores["postgresql"] = args.postgres
        for backend, url in stores.items():
            with open_metadata_store(url) as metadata:
                for clients in args.clients:
                    for mode in MODES:
                        _say(f"{backend}, {clients} clients, {mode} ...")
                        folder = root / f"{backend}-{clients}-{mode.replace('/', '-')}"
                        if mode == "fsync/req":
                            folder.mkdir()
                            figures = run_fsync_per_request(
                                folder / "log.jsonl", clients, args.seconds, think
                            )
                        else:
                            figures = run_keel(
                                metadata.predictions,
                                folder,
                                mode == "durable",
                                clients,
                                args.seconds,
                                think,
                            )
                        results.append(
                            {"store": backend, "clients": clients, "mode": mode, **figures}
                        )
    document = {
        "machine": machine_summary(),
        "seconds": args.seconds,
        "think_ms": args.think_ms,
        "results": results,
    }
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(report(document))
    return 0


def report(document: dict[str, Any]) -> str:
    lines = [
        f"machine: {document['machine']}",
        f"one-row requests handed to the log, {document['think_ms']:g} ms apart per client, "
        f"{document['seconds']:g} s per run",
        "",
        f"{'store':<11} {'clients':>7} {'mode':<10} {'p50 µs':>9} {'p99 µs':>9} "
        f"{'requests/s':>11} {'p50 vs buffered':>16}",
    ]
    by_key = {(r["store"], r["clients"], r["mode"]): r for r in document["results"]}
    for r in document["results"]:
        base = by_key[(r["store"], r["clients"], "buffered")]
        ratio = r["p50_us"] / base["p50_us"] if base["p50_us"] else float("nan")
        lines.append(
            f"{r['store']:<11} {r['clients']:>7} {r['mode']:<10} {r['p50_us']:>9.0f} "
            f"{r['p99_us']:>9.0f} {r['requests_per_s']:>11,.0f} {ratio:>15.1f}x"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
