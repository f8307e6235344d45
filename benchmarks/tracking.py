"""Tracking throughput: keel's RunContext against MLflow's fluent API, both on SQLite.

    python benchmarks/tracking.py [--metrics 10000] [--runs 200] [--json]

Two workloads, each in a fresh temp folder per tool, in one process:
  (a) one run, --metrics calls of log_metric (one key, increasing steps), timed from the
      start of the run to its end, so keel's final flush and MLflow's end_run are inside;
  (b) --runs runs, each started, given 10 params and 10 metrics, and ended.
Both tools are used the way their users write it: keel `with tracker.start_run() as run:
run.log_metric(...)`, MLflow `with mlflow.start_run(): mlflow.log_metric(...)`.

Set-up stays outside the timing for both: creating and migrating the database, and one
untimed warm-up run (imports, caches, prepared statements). keel's SQLite runs with
`synchronous=FULL` (every commit is on disk before it returns), its production setting;
MLflow's SQLite store uses SQLAlchemy's defaults. Telemetry is off (MLFLOW_DISABLE_TELEMETRY,
DO_NOT_TRACK). Results are checked after timing (every point and param is read back).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Before MLflow is imported: no telemetry, no network.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

from keel.metadata import open_metadata_store
from keel.tracking import Tracker

TARGET = 20.0  # times MLflow, from the issue


def _timed(work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def keel_bench(folder: Path, metrics: int, runs: int) -> dict[str, float]:
    store = open_metadata_store(f"sqlite:///{folder / 'keel.db'}")  # migrations: untimed
    tracker = Tracker(store, user="bench")
    with tracker.start_run() as warm:
        warm.log_param("warm", 1)
        warm.log_metric("warm", 1.0)

    run_ids: list[str] = []

    def many_metrics() -> None:
        with tracker.start_run() as run:
            for step in range(metrics):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
        run_ids.append(run.id)

    def many_runs() -> None:
        for _ in range(runs):
            with tracker.start_run() as run:
                for j in range(10):
                    run.log_param(f"param_{j}", j)
                for j in range(10):
                    run.log_metric(f"metric_{j}", j * 0.1)

    metric_seconds = _timed(many_metrics)
    run_seconds = _timed(many_runs)
    try:
        assert len(store.runs.metrics(run_ids[0], "loss")) == metrics
        finished = store.runs.list(status="completed")
        assert len(finished) == runs + 2
        assert all(len(store.runs.params(r.id)) == 10 for r in finished[:runs])
        assert all(len(store.runs.metric_summaries(r.id)) == 10 for r in finished[:runs])
    finally:
        store.close()
    return {"metric_seconds": metric_seconds, "run_seconds": run_seconds}


def mlflow_bench(folder: Path, metrics: int, runs: int) -> dict[str, float]:
    import mlflow
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    mlflow.set_experiment("bench")  # creates and migrates the database: untimed
    with mlflow.start_run():
        mlflow.log_param("warm", 1)
        mlflow.log_metric("warm", 1.0)

    run_ids: list[str] = []

    def many_metrics() -> None:
        with mlflow.start_run() as run:
            for step in range(metrics):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        run_ids.append(run.info.run_id)

    def many_runs() -> None:
        for _ in range(runs):
            with mlflow.start_run():
                for j in range(10):
                    mlflow.log_param(f"param_{j}", j)
                for j in range(10):
                    mlflow.log_metric(f"metric_{j}", j * 0.1)

    metric_seconds = _timed(many_metrics)
    run_seconds = _timed(many_runs)
    client = MlflowClient()
    assert len(client.get_metric_history(run_ids[0], "loss")) == metrics
    found = mlflow.search_runs(max_results=runs + 10, output_format="list")
    assert len(found) == runs + 2
    return {"metric_seconds": metric_seconds, "run_seconds": run_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metrics", type=int, default=10_000, help="log_metric calls in (a)")
    parser.add_argument("--runs", type=int, default=200, help="runs in (b)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore")  # MLflow's deprecation chatter is not a result
    results: dict[str, dict[str, float]] = {}
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="keel-bench-tracking-") as tmp:
        root = Path(tmp)
        # Outside any git repository: MLflow's run-context providers would otherwise read
        # the repository on every run, work keel's tracker leaves to the pipeline.
        os.chdir(root)
        try:
            for name, bench in (("keel", keel_bench), ("mlflow", mlflow_bench)):
                folder = root / name
                folder.mkdir()
                print(f"running {name}...", file=sys.stderr, flush=True)
                results[name] = bench(folder, args.metrics, args.runs)
        finally:
            os.chdir(cwd)

    rows: dict[str, Any] = {}
    for name, timing in results.items():
        rows[name] = {
            "log_metric_per_s": args.metrics / timing["metric_seconds"],
            "runs_per_s": args.runs / timing["run_seconds"],
            **timing,
        }
    ratio = {
        key: rows["keel"][key] / rows["mlflow"][key] for key in ("log_metric_per_s", "runs_per_s")
    }
    document = {
        "metrics": args.metrics,
        "runs": args.runs,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "results": rows,
        "ratio": ratio,
        "target": TARGET,
    }
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    import mlflow

    print(f"tracking on SQLite, mlflow {mlflow.__version__}, {document['machine']}")
    header = f"{'':<8} {'log_metric/s':>14} {'runs/s':>10}"
    print(f"{header}   ({args.metrics} log_metric calls; {args.runs} runs)")
    for name, row in rows.items():
        print(f"{name:<8} {row['log_metric_per_s']:>14,.0f} {row['runs_per_s']:>10,.1f}")
    print(
        f"{'ratio':<8} {ratio['log_metric_per_s']:>13,.1f}x {ratio['runs_per_s']:>9,.1f}x"
        f"   (target {TARGET:g}x on both)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
