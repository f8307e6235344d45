"""A 100-million-row lake table on Spark: keel's contract check and profile against pandera's
PySpark validation of the same rules.

    cd benchmarks && ../.venv/bin/python contract_spark.py [--rows 100000000] [--part-rows 1000000]
        [--masters local,cluster] [--modes keel-check,keel-profile,pandera[,summary]]
        [--workdir DIR] [--pandas2 DIR] [--json] [--out FILE]

The table (built once into --workdir, reused while its rows, parts and seed are the same):
the flights example's 336,776 rows (examples/flights/data) resampled with replacement into
Parquet parts of --part-rows rows (pyarrow, snappy, as Spark writes them), plus an `id`
column numbering the rows 0..N-1, the key. The contract: `infer_contract` on January-June of
the flights with key `id` (its inferred range dropped: a row number is not data) and the row
bounds scaled to the table (N/2..2N); checked with the clock at 2014-01-01 12:00 UTC. The
whole year breaks the January-June contract in several places (as in benchmarks/contracts.py),
so both tools must find violations, not only confirm a clean table.

Measured, each in a fresh process (a user's driver), on each master of --masters (`local`:
local[2] in that process; `cluster`: a standalone cluster on loopback, a master and two workers
of 1 core and 1 GB, started as the tests start it, tests/fixtures/spark_standalone.py); the
Spark session is started before the clock starts:

  keel check    `keel.verbs.contract_check(None, TABLE, contract=FILE, engine=spark)`: every
                partition's rule figures in mapInArrow, merged on the driver, key uniqueness by
                a groupBy; every violation with its offending-row count and sample rows.
  keel profile  `keel.verbs.snapshot(project, TABLE, manifest=True, engine=spark)` into an
                empty project: the manifest (every file's size and content digest) listed on
                the driver, the profile (counts, nulls, extremes, sketches) computed by Spark.
  pandera       `DataFrameSchema.validate(spark.read.parquet(TABLE))` with pandera.pyspark, on
                a session of the same master and settings, the same rules where it can express
                them: dtypes, `nullable`, `Check.in_range`, `Check.isin`, `unique=["id"]`;
                the null-rate bounds, freshness and row count as custom checks (Spark
                aggregations written for it). pandera reports each rule that fails, not how
                many rows break it, nor which (its built-in checks stop at the first
                offending row: `filter(...).limit(1).count()`).
  summary       (only when --modes names it) Spark's own `DataFrame.summary()` (count, mean,
                stddev, min, quartiles, max of every column): the profile a Spark user gets
                without keel, for scale.

pandera's PySpark module imports pyspark.pandas, which does not import with pandas 3 (keel's
environment): pandera runs under pandas 2, from --pandas2, a folder made once with
    uv pip install --python .venv/bin/python --target DIR --no-deps "pandas>=2.2,<3" pytz tzdata
(the script says so when it is missing). Nothing else of the environment differs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import machine_summary

ROOT = Path(__file__).resolve().parents[1]
FLIGHTS = ROOT / "examples" / "flights" / "data" / "nycflights13_flights.csv.gz"
#: Eight or nine hours after the last departure of the year: the data is fresh.
NOW = datetime(2014, 1, 1, 12, tzinfo=UTC)
LOCAL_MASTER = "local[2]"
SPARK_CONF = {"spark.ui.enabled": "false"}
MODES = ("keel-check", "keel-profile", "pandera", "summary")
MASTERS = ("local", "cluster")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- the lake table ---------------------------------------------------------------------------

_FLIGHTS: Any = None


def _flights() -> Any:
    """The flights, typed as keel reads them, with the row number as `id`."""
    import pyarrow as pa

    from keel.data import read_table

    table = read_table(FLIGHTS)
    return table.add_column(0, "id", pa.array(range(table.num_rows), pa.int64()))


def _init_writer() -> None:
    global _FLIGHTS
    _FLIGHTS = _flights()


def _write_part(job: tuple[int, int, int, int, str]) -> int:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    seed, index, first, count, path = job
    rng = np.random.default_rng([seed, index])
    part = _FLIGHTS.take(pa.array(rng.integers(0, _FLIGHTS.num_rows, count)))
    part = part.set_column(0, "id", pa.array(np.arange(first, first + count, dtype=np.int64)))
    pq.write_table(part, path, compression="snappy")
    return Path(path).stat().st_size


def ensure_table(
    workdir: Path, rows: int, part_rows: int, seed: int
) -> tuple[Path, dict[str, Any]]:
    folder = workdir / f"flights-{rows}-{part_rows}-seed{seed}"
    marker = workdir / f"{folder.name}.json"
    if marker.exists() and folder.is_dir():
        built = json.loads(marker.read_text())
        _say(f"reusing {folder} ({built['bytes'] / 2**30:.2f} GiB)")
        return folder, {**built, "cached": True}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _say(f"writing {rows:,} rows of flights into Parquet parts ...")
    jobs = []
    for index, first in enumerate(range(0, rows, part_rows)):
        count = min(part_rows, rows - first)
        jobs.append((seed, index, first, count, str(folder / f"part-{index:05d}.parquet")))
    began = time.perf_counter()
    # Spawned: the parent's Arrow threads must not be inherited mid-lock by a fork.
    with multiprocessing.get_context("spawn").Pool(2, _init_writer) as pool:
        size = sum(pool.imap_unordered(_write_part, jobs))
    built = {
        "rows": rows,
        "parts": len(jobs),
        "bytes": size,
        "seconds": time.perf_counter() - began,
    }
    marker.write_text(json.dumps(built))
    _say(f"  {built['seconds']:.0f} s, {size / 2**30:.2f} GiB")
    return folder, {**built, "cached": False}


def write_contract(workdir: Path, rows: int) -> tuple[Path, Path]:
    """The January-June contract for a table of `rows` rows, as keel's file and as the plain
    rules the pandera process builds its schema from."""
    import dataclasses

    import pyarrow.compute as pc

    from keel.contracts import infer_contract
    from keel.contracts.io import write_contract as write
    from keel.contracts.model import RowBounds

    flights = _flights()
    first_half = flights.filter(pc.less_equal(flights["month"], 6))
    contract = infer_contract(first_half, key=("id",), source="flights January-June")
    contract = dataclasses.replace(
        contract,
        columns=tuple(
            dataclasses.replace(c, range=None) if c.name == "id" else c for c in contract.columns
        ),
        rows=RowBounds(min=rows // 2, max=rows * 2),
    )
    path = workdir / f"contract-{rows}.yaml"
    write(contract, path)
    rules = {
        "columns": [
            {
                "name": c.name,
                "type": c.type,
                "nullable": c.nullable,
                "max_null_rate": c.max_null_rate,
                "range": None if c.range is None else [c.range.min, c.range.max],
                "domain": None if c.domain is None else list(c.domain),
            }
            for c in contract.columns
        ],
        "key": list(contract.key),
        "timestamp": None
        if contract.timestamp is None
        else {
            "column": contract.timestamp.column,
            "cutoff": (NOW - contract.timestamp.freshness).isoformat(),
        },
        "rows": [contract.rows.min, contract.rows.max] if contract.rows else None,
    }
    plain = workdir / f"rules-{rows}.json"
    plain.write_text(json.dumps(rules, default=str))
    return path, plain


# --- the children: one measurement each ---------------------------------------------------------


def _peak() -> int:
    """This process's peak resident memory. Not getrusage's ru_maxrss: Linux carries it over
    `exec` from the forking parent, whose own peak it would then report."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def child(mode: str, master: str, table: str, contract: str, rules: str) -> dict[str, Any]:
    if mode == "pandera":
        return _pandera(master, table, rules)
    from keel.engines.spark import spark_session
    from keel.spec import EngineSpec

    began = time.perf_counter()
    session = spark_session(master, SPARK_CONF)
    session_seconds = time.perf_counter() - began
    spec = EngineSpec(kind="spark", master=master, conf=SPARK_CONF)
    result: dict[str, Any] = {"session_seconds": session_seconds}
    began = time.perf_counter()
    if mode == "keel-check":
        from keel.verbs import contract_check

        checked = contract_check(None, table, contract=contract, now=NOW, engine=spec)
        result["seconds"] = time.perf_counter() - began
        result["ok"] = checked.ok
        result["failed"] = sorted(
            f"{v.column or '-'} {v.rule} ({v.rows:,} rows)"
            for v in checked.report.violations
            if v.severity == "error"
        )
        result["warnings"] = sorted(
            f"{v.column or '-'} {v.rule}"
            for v in checked.report.violations
            if v.severity != "error"
        )
    elif mode == "keel-profile":
        from keel.project import Project
        from keel.verbs import snapshot

        folder = tempfile.mkdtemp(prefix="keel-bench-profile-")
        try:
            with Project.init(Path(folder) / "p", env={"KEEL_USER": "ana"}) as project:
                began = time.perf_counter()
                done = snapshot(project, table, manifest=True, engine=spec)
                result["seconds"] = time.perf_counter() - began
                result["rows"] = done.version.rows
                result["files"] = done.files_read
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    elif mode == "summary":
        frame = session.read.parquet(table)
        summary = frame.summary().collect()
        result["seconds"] = time.perf_counter() - began
        result["statistics"] = len(summary)
    result["driver_peak_bytes"] = _peak()
    session.stop()
    return result


def _pandera(master: str, table: str, rules_path: str) -> dict[str, Any]:
    """pandera's PySpark validation of the contract's rules (this process runs pandas 2)."""
    import warnings

    warnings.simplefilter("ignore", FutureWarning)
    import pandera.pyspark as pas
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    began = time.perf_counter()
    builder = SparkSession.builder.master(master).config("spark.app.name", "pandera")
    for key, value in {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        **SPARK_CONF,
    }.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session_seconds = time.perf_counter() - began
    rules = json.loads(Path(rules_path).read_text())

    def null_rate(data: Any, bound: float) -> bool:
        row = data.dataframe.select(
            F.avg(F.col(data.column_name).isNull().cast("double")).alias("rate")
        ).first()
        return row is None or row["rate"] is None or row["rate"] <= bound

    def fresh(data: Any, cutoff: str) -> bool:
        # Compared in Spark: an aware instant, not Python's naive local times.
        limit = F.lit(datetime.fromisoformat(cutoff))
        row = data.dataframe.select((F.max(data.column_name) >= limit).alias("ok")).first()
        return bool(row is not None and row["ok"])

    def row_count(frame: Any, low: int, high: int) -> bool:
        return bool(low <= frame.count() <= high)

    began = time.perf_counter()
    frame = session.read.parquet(table)
    spark_types = {field.name: field.dataType for field in frame.schema.fields}
    columns = {}
    custom = []
    for column in rules["columns"]:
        checks = []
        name = column["name"]
        if column["range"] is not None:
            low, high = column["range"]
            if low is not None and high is not None:
                if isinstance(spark_types.get(name), T.TimestampType):
                    low, high = datetime.fromisoformat(low), datetime.fromisoformat(high)
                checks.append(pas.Check.in_range(low, high))
        if column["domain"] is not None:
            checks.append(pas.Check.isin(column["domain"]))
        if column["max_null_rate"] is not None:
            checks.append(pas.Check(null_rate, name="null_rate", bound=column["max_null_rate"]))
            custom.append(f"{name} null_rate")
        if rules["timestamp"] and rules["timestamp"]["column"] == name:
            checks.append(pas.Check(fresh, name="stale", cutoff=rules["timestamp"]["cutoff"]))
            custom.append(f"{name} stale")
        # The table's own Spark types: the dtype check is the schema check.
        columns[name] = pas.Column(
            spark_types.get(name, T.StringType()), checks, nullable=column["nullable"]
        )
    table_checks = []
    if rules["rows"] is not None:
        low, high = rules["rows"]
        table_checks.append(pas.Check(row_count, name="row_count", low=low, high=high))
        custom.append("row_count")
    schema = pas.DataFrameSchema(
        columns, checks=table_checks, unique=rules["key"] or None, strict=False
    )
    validated = schema.validate(frame)
    errors = validated.pandera.errors
    seconds = time.perf_counter() - began
    failed = []
    for kind in (errors or {}).values():
        for group in kind.values():
            for error in group:
                failed.append(f"{error.get('column') or '-'} {error.get('check')}")
    result = {
        "session_seconds": session_seconds,
        "seconds": seconds,
        "failed": sorted(failed),
        "custom": custom,
        "driver_peak_bytes": _peak(),
    }
    session.stop()
    return result


#: keel's rule -> the pandera check that tests it (as this script builds the schema).
PANDERA_CHECK = {
    "below_min": "in_range",
    "above_max": "in_range",
    "unknown_category": "isin",
    "not_nullable": "not_nullable",
    "null_rate": "null_rate",
    "stale": "stale",
    "row_count": "row_count",
    "duplicate_key": "unique",
    "type_mismatch": "dtype",
}


def failed_rules(run: dict[str, Any]) -> set[str]:
    """The failed rules of a run as `column check`, in pandera's words."""
    found = set()
    for line in run["failed"]:
        column, check = line.split(" ", 2)[:2]
        if run["mode"] == "keel-check":
            check = PANDERA_CHECK.get(check, check)
        else:
            check = check.split("(", 1)[0]
            check = {"dtype": "dtype", "column_in_dataframe": "column_missing"}.get(check, check)
        found.add(f"{column} {check}")
    return found


def run_child(
    mode: str, master: str, table: Path, contract: Path, rules: Path, pandas2: Path
) -> dict[str, Any]:
    environ = dict(os.environ)
    if mode == "pandera":
        environ["PYTHONPATH"] = os.pathsep.join(
            [str(pandas2), *filter(None, [environ.get("PYTHONPATH")])]
        )
    output = subprocess.run(
        [sys.executable, __file__, "--child", mode, master, str(table), str(contract), str(rules)],
        capture_output=True,
        text=True,
        env=environ,
        check=False,
    )
    if output.returncode != 0:
        tail = "\n".join(output.stderr.strip().splitlines()[-30:])
        raise SystemExit(f"{mode} on {master} failed:\n{tail}")
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


# --- the parent ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--part-rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--masters", default=",".join(MASTERS))
    parser.add_argument("--modes", default="keel-check,keel-profile,pandera")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "keel-bench-lake",
        help="where the table is written and kept for the next run",
    )
    parser.add_argument(
        "--pandas2",
        type=Path,
        default=Path(tempfile.gettempdir()) / "keel-bench-pandas2",
        help="a folder with pandas 2 for pandera's process (see the module's docstring)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the figures there as JSON")
    args = parser.parse_args(argv)
    masters = [m.strip() for m in args.masters.split(",") if m.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(masters) - set(MASTERS) or set(modes) - set(MODES):
        parser.error(f"--masters: {', '.join(MASTERS)}; --modes: {', '.join(MODES)}")
    if "pandera" in modes and not (args.pandas2 / "pandas").is_dir():
        raise SystemExit(
            f"pandera needs pandas 2 in {args.pandas2}: uv pip install --python "
            f"{sys.executable} --target {args.pandas2} --no-deps 'pandas>=2.2,<3' pytz tzdata"
        )
    args.workdir.mkdir(parents=True, exist_ok=True)
    table, built = ensure_table(args.workdir, args.rows, args.part_rows, args.seed)
    contract, rules = write_contract(args.workdir, args.rows)
    results: dict[str, Any] = {
        "machine": machine_summary(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "table": built,
        "runs": [],
    }
    with ExitStack() as stack:
        urls = {"local": LOCAL_MASTER}
        if "cluster" in masters:
            sys.path.insert(0, str(ROOT))
            from tests.fixtures.spark_standalone import standalone_cluster

            _say("starting a standalone cluster: a master and two workers ...")
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="keel-spark-")))
            urls["cluster"] = stack.enter_context(
                standalone_cluster(folder, workers=2, memory="1g")
            ).master
        for master in masters:
            for mode in modes:
                _say(f"{mode} on {master} ...")
                result = run_child(mode, urls[master], table, contract, rules, args.pandas2)
                result.update(mode=mode, master=master)
                results["runs"].append(result)
                if args.out is not None:  # as it goes: a run cut short keeps what it measured
                    args.out.write_text(json.dumps(results, indent=2))
                _say(f"  {result['seconds']:.1f} s")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)
    return 0


def report(results: dict[str, Any]) -> None:
    built = results["table"]
    print(results["machine"])
    print(results["date"])
    print(
        f"table: {built['rows']:,} rows in {built['parts']} Parquet parts, "
        f"{built['bytes'] / 2**30:.2f} GiB on disk"
        + ("" if built["cached"] else f", written in {built['seconds']:.0f} s")
    )
    print(
        f"{'MASTER':<8} {'WHAT':<13} {'SECONDS':>8} {'ROWS/S':>12} {'SESSION':>8} {'PEAK MiB':>9}"
    )
    rows = built["rows"]
    for run in results["runs"]:
        print(
            f"{run['master']:<8} {run['mode']:<13} {run['seconds']:>8.1f} "
            f"{rows / run['seconds']:>12,.0f} {run['session_seconds']:>8.1f} "
            f"{run['driver_peak_bytes'] / 2**20:>9,.0f}"
        )
    by = {(r["master"], r["mode"]): r for r in results["runs"]}
    for master in dict.fromkeys(r["master"] for r in results["runs"]):
        keel, peer = by.get((master, "keel-check")), by.get((master, "pandera"))
        if keel and peer:
            ratio = peer["seconds"] / keel["seconds"]
            print(
                f"{master}: keel's check {keel['seconds']:.1f} s, pandera {peer['seconds']:.1f} s:"
                f" keel {ratio:.2f}x pandera's speed"
                + ("" if ratio >= 1 else f" ({1 / ratio:.2f}x slower)")
            )
        profile, summary = by.get((master, "keel-profile")), by.get((master, "summary"))
        if profile and summary:
            print(
                f"{master}: keel's profile (manifest and sketches) {profile['seconds']:.1f} s, "
                f"Spark's summary() {summary['seconds']:.1f} s"
            )
    for master in dict.fromkeys(r["master"] for r in results["runs"]):
        keel, peer = by.get((master, "keel-check")), by.get((master, "pandera"))
        if keel and peer:
            ours, theirs = failed_rules(keel), failed_rules(peer)
            if ours == theirs:
                print(f"{master}: keel and pandera fail the same {len(ours)} rules")
            else:
                print(
                    f"{master}: failed rules differ: keel only {sorted(ours - theirs)}, "
                    f"pandera only {sorted(theirs - ours)}"
                )
    for run in results["runs"]:
        if run["mode"] in ("keel-check", "pandera"):
            print(f"{run['master']} {run['mode']}: {len(run['failed'])} failed")
            for line in run["failed"]:
                print(f"    {line}")
            if run.get("custom"):
                print(f"  written as custom checks for pandera: {', '.join(run['custom'])}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, master, table, contract, rules = sys.argv[2:7]
        print(json.dumps(child(mode, master, table, contract, rules), default=str))
        sys.exit(0)
    sys.exit(main())
