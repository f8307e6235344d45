"""`keel monitor` over millions of logged predictions, in bounded memory.

    python benchmarks/monitor.py [--rows 10000000] [--hours 10] [--json]

Set-up (untimed): the flights example trained small, v1 in production, and --rows synthetic
predictions over --hours hours written straight into prediction-log segments (real inputs
sampled from the real rows, typed by the real inference contract: 23 inputs, 2 outputs;
see benchmarks/prediction_log.py, whose set-up this reuses).

Measured, each in a fresh process so its peak resident memory is its own:
  keel       `monitor(project, window=1h, windows=--hours, record=False)`: every window's
             drift, quality, volume and freshness signals against the reference. The log is
             read in slices and summarised into mergeable sketches, so memory is one slice
             and one sketch per window, whatever the number of rows.
  load-all   what a user does with a frame-based drift library: read every logged row of the
             range into memory (`read_window` over all hours, then `to_pandas`), before any
             statistic is computed. Its memory grows with the rows.
Both at --rows / 10 and at --rows, to show which one grows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from common import machine_summary
from prediction_log import MODEL, index_segment, make_project, raw_rows, synthetic_segment

START = datetime(2013, 7, 2, tzinfo=UTC)
SEGMENT = 100_000

_CHILD = """
import json, resource, sys, time
from datetime import datetime, timedelta, timezone
from keel.project import Project
folder, mode, hours = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = datetime(2013, 7, 2, tzinfo=timezone.utc)
project = Project.open(folder, env={"KEEL_USER": "ana"})
began = time.perf_counter()
if mode == "keel":
    from keel.monitoring.service import WindowPlan, monitor
    report = monitor(project, plan=WindowPlan(duration=timedelta(hours=1)), windows=hours,
                     now=start + timedelta(hours=hours), record=False)
    rows = sum(w.rows for w in report.windows)
    drifted = sum(len(w.drifted) for w in report.windows)
else:
    from keel.predlog.read import read_window
    table = read_window(project, "flights-delay", start, start + timedelta(hours=hours))
    frame = table.to_pandas()
    rows, drifted = len(frame), None
seconds = time.perf_counter() - began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "rows": rows, "peak_bytes": peak, "drifted": drifted}))
"""


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fill(project: Any, rows: int, hours: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    pool = raw_rows(project)
    first = int(START.timestamp() * 1000)
    span = hours * 3_600_000
    done = 0
    while done < rows:
        count = min(SEGMENT, rows - done)
        low = first + span * done // rows
        high = first + span * (done + count) // rows
        index_segment(project, synthetic_segment(pool, count, low, max(high, low + 1), rng))
        done += count


def child(folder: Path, mode: str, hours: int) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder), mode, str(hours)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--hours", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="keel-bench-monitor-"))
    results: dict[str, Any] = {"machine": machine_summary(), "hours": args.hours, "runs": []}
    try:
        base = root / "base"
        _say("training the flights example ...")
        with make_project(base) as project:
            from keel.models.reference import reference_for

            reference_for(project, project.metadata.models.get(MODEL, 1))
        for rows in (args.rows // 10, args.rows):
            folder = root / f"rows-{rows}"
            shutil.copytree(base, folder)
            _say(f"writing {rows:,} predictions into segments ...")
            began = time.perf_counter()
            from keel.project import Project

            with Project.open(folder, env={"KEEL_USER": "ana"}) as project:
                fill(project, rows, args.hours)
            _say(f"  {time.perf_counter() - began:.0f} s")
            for mode in ("keel", "load-all"):
                _say(f"{mode} on {rows:,} rows ...")
                result = child(folder, mode, args.hours)
                results["runs"].append({"mode": mode, "rows": rows, **result})
                _say(f"  {result['seconds']:.1f} s, peak {result['peak_bytes'] / 2**20:,.0f} MiB")
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(results["machine"])
    print(f"{'MODE':<10} {'ROWS':>12} {'SECONDS':>9} {'ROWS/S':>12} {'PEAK MiB':>9}")
    for run in results["runs"]:
        print(
            f"{run['mode']:<10} {run['rows']:>12,} {run['seconds']:>9.1f} "
            f"{run['rows'] / run['seconds']:>12,.0f} {run['peak_bytes'] / 2**20:>9,.0f}"
        )
    by = {(r["mode"], r["rows"]): r for r in results["runs"]}
    small, large = args.rows // 10, args.rows
    for mode in ("keel", "load-all"):
        growth = by[(mode, large)]["peak_bytes"] / by[(mode, small)]["peak_bytes"]
        print(f"{mode}: peak memory x{growth:.2f} for x10 the rows")
    ratio = by[("load-all", large)]["peak_bytes"] / by[("keel", large)]["peak_bytes"]
    print(f"at {large:,} rows keel monitors in 1/{ratio:.1f} of the memory of loading the rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
