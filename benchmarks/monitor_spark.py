"""`keel monitor` over 10 and 100 million logged predictions: in-process, on Spark's local
mode, and on a standalone Spark cluster of two workers; time, peak driver memory, same answers.

    cd benchmarks && ../.venv/bin/python monitor_spark.py [--rows 10000000,100000000]
        [--hours 10] [--engines in-process,local,cluster] [--workdir DIR] [--json] [--out FILE]

Runs each log size of --rows (`--rows 100000,1000000` for a quick check; a single size N
runs N / 10 and N, `N,` only N), to show which memory grows with the rows.

Set-up (untimed, cached in --workdir between runs: the folders are named by rows, hours and
seed): the flights example trained small, v1 in production, and the predictions written over
--hours hours as compacted prediction-log segments of 100,000 rows, the flights shape of
benchmarks/monitor.py (real inputs sampled from the real rows, typed by the real inference
contract: 23 inputs, 2 outputs). The segments are encoded by keel's compaction writer
(`segment_bytes`: Parquet, zstd) in two processes and stored and indexed in the project's
artifact store and SQLite metadata as `keel predictions compact` does, without going through
the serving path row by row.

Measured, each run in a fresh process (the driver: it opens the project, calls the verb, and
is what a user's `keel monitor` is):
  in-process  `project.monitor(window="1h", windows=--hours, record=False, engine="local")`
  local       the same with `engine=EngineSpec(kind="spark", master="local[2]")`: Spark in
              this machine's two cores, its executors inside the driver's JVM
  cluster     the same on `spark://` a standalone cluster on loopback (a master and two
              workers of 1 core and 1 GB, started as the tests' fixture starts it,
              tests/fixtures/spark_standalone.py): executors in the workers' JVMs
Spark's session is started before the clock starts (its start is printed apart); the clock
covers the verb: listing the segments, the Spark job (or the in-process read), judging.

Memory, read from the kernel at the end of each run (/proc/PID/status VmHWM, peak resident
set; not getrusage's ru_maxrss, which Linux carries over `exec` from the forking parent):
  keel        the driver's Python process, where keel runs and the windows are merged
  JVM         the driver's JVM that pyspark starts (on local[2] it also runs the executors,
              whose heap Spark bounds, not the rows)
  Python workers  on local[2], the peaks of the pyspark worker processes the JVM forked,
              summed (an upper bound: their peaks need not coincide); on the cluster they
              live under the workers, not the driver, and are not counted
The windows (start, end, rows, versions, every drift result and signal with its value and
verdict, the freshness signals) of every Spark run must equal the in-process run's: counts,
verdicts and names exactly, statistics to float rounding (merged in another order); any
difference is printed and the script exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from common import machine_summary
from prediction_log import MODEL, index_segment_bytes, make_project, raw_rows, synthetic_segment

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2013, 7, 2, tzinfo=UTC)
SEGMENT = 100_000
LOCAL_MASTER = "local[2]"
#: A user's session as keel's defaults make it; no web UI to bind on a shared machine.
SPARK_CONF = {"spark.ui.enabled": "false"}
ENGINES = ("in-process", "local", "cluster")
#: Statistics merged in another order differ by float rounding only.
CLOSE_REL, CLOSE_ABS = 1e-9, 1e-12

_CHILD = """
import json, os, sys, time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from keel.project import Project
from keel.spec import EngineSpec
folder, engine, master, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[5]
hours, conf = int(sys.argv[4]), json.loads(sys.argv[6])
start = datetime(2013, 7, 2, tzinfo=timezone.utc)
project = Project.open(folder, env={"KEEL_USER": "ana"})
session_seconds = None
spec = "local"
if engine != "in-process":
    from keel.engines.spark import spark_session
    began = time.perf_counter()
    session = spark_session(master, conf)
    session_seconds = time.perf_counter() - began
    spec = EngineSpec(kind="spark", master=master, conf=conf)
began = time.perf_counter()
report = project.monitor(window="1h", windows=hours, now=start + timedelta(hours=hours),
                         record=False, engine=spec)
seconds = time.perf_counter() - began

def status(pid):
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    hwm = fields.get("VmHWM")
    return fields["Name"].strip(), int(hwm.split()[0]) * 1024 if hwm else 0

def children(pid):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found

jvm_peak, worker_peak, workers = None, 0, 0
if engine != "in-process":
    tree, todo = [], children(os.getpid())
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children(pid))
    for pid in tree:
        found = status(pid)
        if found is None:
            continue
        name, peak = found
        if name == "java":
            jvm_peak = max(jvm_peak or 0, peak)
        elif name.startswith("python"):
            worker_peak += peak
            workers += 1
document = report.to_dict()
answers = {"windows": document["windows"], "freshness": document["freshness"]}
Path(out).write_text(json.dumps(answers))
print(json.dumps({
    "seconds": seconds,
    "session_seconds": session_seconds,
    "rows": sum(w.rows for w in report.windows),
    "windows": len(report.windows),
    "drifted": sum(len(w.drifted) for w in report.windows),
    "breached": sum(s.breached for w in report.windows for s in w.signals),
    "keel_peak_bytes": status(os.getpid())[1],
    "jvm_peak_bytes": jvm_peak,
    "python_workers": workers,
    "python_workers_peak_bytes": worker_peak if workers else None,
}))
"""


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- the log: compacted segments written in two processes, indexed in this one ----------------

_POOL: Any = None


def _init_worker(folder: str) -> None:
    global _POOL
    from keel.project import Project

    with Project.open(folder, env={"KEEL_USER": "ana"}) as project:
        _POOL = raw_rows(project)


def _encode(job: tuple[int, int, int, int, int]) -> dict[str, Any]:
    """One segment of `count` predictions between two times, encoded as keel's compaction
    writes it; the seed makes the log the same whatever the order the workers run in."""
    import pyarrow.compute as pc

    from keel.predlog.read import segment_bytes

    seed, index, count, low, high = job
    table = synthetic_segment(_POOL, count, low, high, np.random.default_rng([seed, index]))
    times = table["at"]
    return {
        "data": segment_bytes(table),
        "first_at": pc.min(times).as_py(),
        "last_at": pc.max(times).as_py(),
        "min_id": table["id"][0].as_py(),
        "max_id": table["id"][-1].as_py(),
        "rows": table.num_rows,
    }


def _jobs(rows: int, hours: int, seed: int) -> Iterator[tuple[int, int, int, int, int]]:
    first = int(START.timestamp() * 1000)
    span = hours * 3_600_000
    done = index = 0
    while done < rows:
        count = min(SEGMENT, rows - done)
        low = first + span * done // rows
        high = first + span * (done + count) // rows
        yield seed, index, count, low, max(high, low + 1)
        done += count
        index += 1


def build_log(base: Path, folder: Path, rows: int, hours: int, seed: int) -> dict[str, Any]:
    """The project in `base` copied to `folder`, with `rows` predictions compacted into it."""
    from keel.project import Project

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(base, partial)
    began = time.perf_counter()
    size = segments = 0
    # Spawned, not forked: this process has run Arrow's and OpenMP's threads (training), whose
    # locks a forked child can inherit held.
    context = multiprocessing.get_context("spawn")
    with (
        context.Pool(2, _init_worker, (str(partial),)) as pool,
        Project.open(partial, env={"KEEL_USER": "ana"}) as project,
    ):
        for segment in pool.imap(_encode, _jobs(rows, hours, seed), chunksize=1):
            data = segment.pop("data")
            size += index_segment_bytes(project, data, **segment)
            segments += 1
            if segments % 100 == 0:
                _say(f"  {segments * SEGMENT:,} rows")
    built = {
        "rows": rows,
        "segments": segments,
        "bytes": size,
        "seconds": time.perf_counter() - began,
    }
    (partial / "bench-log.json").write_text(json.dumps(built))
    partial.rename(folder)
    return built


def ensure_log(workdir: Path, rows: int, hours: int, seed: int) -> tuple[Path, dict[str, Any]]:
    base = workdir / "base"
    if not (base / "bench-base.json").exists():
        shutil.rmtree(base, ignore_errors=True)
        _say("training the flights example ...")
        with make_project(base) as project:
            from keel.models.reference import reference_for

            reference_for(project, project.metadata.models.get(MODEL, 1))
        (base / "bench-base.json").write_text("{}")
    folder = workdir / f"log-{rows}-{hours}h-seed{seed}"
    if (folder / "bench-log.json").exists():
        built = json.loads((folder / "bench-log.json").read_text())
        _say(f"reusing {folder} ({built['bytes'] / 2**30:.2f} GiB)")
        return folder, {**built, "cached": True}
    _say(f"writing {rows:,} predictions into segments ...")
    built = build_log(base, folder, rows, hours, seed)
    _say(f"  {built['seconds']:.0f} s, {built['bytes'] / 2**30:.2f} GiB")
    return folder, {**built, "cached": False}


# --- runs -------------------------------------------------------------------------------------


def run(folder: Path, engine: str, master: str, hours: int, out: Path) -> dict[str, Any]:
    output = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(folder),
            engine,
            master,
            str(hours),
            str(out),
            json.dumps(SPARK_CONF),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if output.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{output.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def differences(ours: Any, theirs: Any, where: str = "") -> Iterator[str]:
    """Where two documents differ: exactly, except floats to rounding (NaN equal to NaN)."""
    if isinstance(theirs, dict):
        if not isinstance(ours, dict) or ours.keys() != theirs.keys():
            keys = sorted(ours) if isinstance(ours, dict) else ours
            yield f"{where}: keys {keys} != {sorted(theirs)}"
            return
        for key in theirs:
            yield from differences(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list):
        if not isinstance(ours, list) or len(ours) != len(theirs):
            yield f"{where}: {ours!r:.200} != {theirs!r:.200}"
            return
        for index, (mine, expected) in enumerate(zip(ours, theirs, strict=True)):
            yield from differences(mine, expected, f"{where}[{index}]")
    elif isinstance(theirs, float) and isinstance(ours, float):
        if math.isnan(theirs) and math.isnan(ours):
            return
        if not math.isclose(ours, theirs, rel_tol=CLOSE_REL, abs_tol=CLOSE_ABS):
            yield f"{where}: {ours!r} != {theirs!r}"
    elif ours != theirs:
        yield f"{where}: {ours!r:.200} != {theirs!r:.200}"


def drift_differences(windows: Any, expected: Any) -> dict[str, dict[str, Any]]:
    """Per monitored column whose drift differs from `expected`'s beyond rounding: in how
    many windows, by how much at most, and in how many windows the verdict differs."""
    found: dict[str, dict[str, Any]] = {}
    for ours, theirs in zip(windows["windows"], expected["windows"], strict=False):
        for mine, other in zip(ours["drift"], theirs["drift"], strict=False):
            a, b = mine.get("statistic"), other.get("statistic")
            same = a == b or (
                isinstance(a, float)
                and isinstance(b, float)
                and math.isclose(a, b, rel_tol=CLOSE_REL, abs_tol=CLOSE_ABS)
            )
            if same and mine["drifted"] == other["drifted"]:
                continue
            entry = found.setdefault(
                other["column"], {"windows": 0, "verdicts": 0, "largest": 0.0, "pairs": []}
            )
            entry["windows"] += 1
            entry["verdicts"] += mine["drifted"] != other["drifted"]
            if isinstance(a, float) and isinstance(b, float):
                entry["largest"] = max(entry["largest"], abs(a - b))
                entry["pairs"].append((b, a))
    return found


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000000,100000000", help="log sizes, comma-separated")
    parser.add_argument("--hours", type=int, default=10)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "keel-bench-monitor-spark",
        help="where the logs are built and kept for the next run (5.9 GB per 100M rows)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the figures there as JSON")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.rows.split(",") if size.strip()]
    if "," not in args.rows:
        sizes = [sizes[0] // 10, sizes[0]]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"--engines: unknown {', '.join(unknown)} (known: {', '.join(ENGINES)})")
    args.workdir.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {
        "machine": machine_summary(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "hours": args.hours,
        "logs": [],
        "runs": [],
        "mismatches": [],
    }
    logs = {}
    for rows in sizes:
        logs[rows], built = ensure_log(args.workdir, rows, args.hours, args.seed)
        results["logs"].append(built)
    with ExitStack() as stack:
        masters = {"in-process": "", "local": LOCAL_MASTER}
        if "cluster" in engines:
            sys.path.insert(0, str(ROOT))
            from tests.fixtures.spark_standalone import standalone_cluster

            _say("starting a standalone cluster: a master and two workers ...")
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="keel-spark-")))
            cluster = stack.enter_context(standalone_cluster(folder, workers=2, memory="1g"))
            masters["cluster"] = cluster.master
        for rows, folder in logs.items():
            expected: Any = None
            for engine in engines:
                _say(f"{engine} on {rows:,} rows ...")
                out = args.workdir / f"windows-{engine}-{rows}.json"
                result = run(folder, engine, masters[engine], args.hours, out)
                windows = json.loads(out.read_text())
                result.update(engine=engine, rows_logged=rows, master=masters[engine] or None)
                if expected is None:
                    expected, result["equal"] = windows, None
                else:
                    found = list(differences(windows, expected))
                    result["equal"] = not found
                    result["drift_differences"] = drift_differences(windows, expected)
                    for line in found[:20]:
                        _say(f"  DIFFERS from {engines[0]}: {line}")
                    results["mismatches"] += [f"{engine} {rows}: {line}" for line in found]
                if result["rows"] != rows:
                    results["mismatches"].append(f"{engine} {rows}: counted {result['rows']:,}")
                results["runs"].append(result)
                if args.out is not None:  # as it goes: a run cut short keeps what it measured
                    args.out.write_text(json.dumps(results, indent=2))
                _say(
                    f"  {result['seconds']:.1f} s, keel {_mib(result['keel_peak_bytes'])} MiB, "
                    f"JVM {_mib(result['jvm_peak_bytes'])} MiB"
                )
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    if args.json:
        print(json.dumps(results, indent=2))
        return 1 if results["mismatches"] else 0
    report(results)
    return 1 if results["mismatches"] else 0


def report(results: dict[str, Any]) -> None:
    print(results["machine"])
    print(results["date"])
    for built in results["logs"]:
        print(
            f"log of {built['rows']:,} rows: {built['segments']:,} segments, "
            f"{built['bytes'] / 2**30:.2f} GiB on disk"
            + ("" if built["cached"] else f", written in {built['seconds']:.0f} s")
        )
    print(
        f"{'ENGINE':<11} {'ROWS':>12} {'SECONDS':>8} {'ROWS/S':>11} {'SESSION':>8} "
        f"{'KEEL MiB':>9} {'JVM MiB':>8} {'PYWORK MiB':>11} {'SAME':>5}"
    )
    for run in results["runs"]:
        session = "-" if run["session_seconds"] is None else f"{run['session_seconds']:.1f}"
        same = {None: "-", True: "yes", False: "NO"}[run["equal"]]
        print(
            f"{run['engine']:<11} {run['rows_logged']:>12,} {run['seconds']:>8.1f} "
            f"{run['rows'] / run['seconds']:>11,.0f} {session:>8} "
            f"{_mib(run['keel_peak_bytes']):>9} {_mib(run['jvm_peak_bytes']):>8} "
            f"{_mib(run['python_workers_peak_bytes']):>11} {same:>5}"
        )
    by = {(r["engine"], r["rows_logged"]): r for r in results["runs"]}
    sizes = sorted({r["rows_logged"] for r in results["runs"]})
    if len(sizes) == 2:
        small, large = sizes
        for engine in dict.fromkeys(r["engine"] for r in results["runs"]):
            a, b = by.get((engine, small)), by.get((engine, large))
            if a and b:
                growth = b["keel_peak_bytes"] / a["keel_peak_bytes"]
                line = f"{engine}: x{large // small} the rows, keel's peak x{growth:.2f}"
                if a["jvm_peak_bytes"] and b["jvm_peak_bytes"]:
                    line += f", the JVM's x{b['jvm_peak_bytes'] / a['jvm_peak_bytes']:.2f}"
                line += f", time x{b['seconds'] / a['seconds']:.1f}"
                print(line)
    for run in results["runs"]:
        for column, entry in (run.get("drift_differences") or {}).items():
            low = min(entry["pairs"], default=(math.nan, math.nan))
            high = max(entry["pairs"], default=(math.nan, math.nan))
            print(
                f"{run['engine']} at {run['rows_logged']:,} rows: {column}'s drift differs in "
                f"{entry['windows']} windows (by up to {entry['largest']:.4f}; first engine "
                f"{low[0]:.4f}..{high[0]:.4f}, this one {low[1]:.4f}..{high[1]:.4f}), "
                f"its verdict in {entry['verdicts']}"
            )
    if results["mismatches"]:
        print(f"{len(results['mismatches'])} differences from the first engine's windows:")
        for line in results["mismatches"][:40]:
            print(f"  {line}")
    elif any(run["equal"] is not None for run in results["runs"]):
        print("every other run's windows, signals and verdicts equal the first engine's")


if __name__ == "__main__":
    sys.exit(main())
