"""Checking the 336,776-row flights table against a data contract: keel vs pandera vs hand-written.

The contract is inferred by keel from January-June (with the flight key year, month, day,
carrier, flight, origin). The same rules are then checked three ways:

1. keel: `check_contract(table, contract, now=...)` on the Arrow table, with its full report
   (every violation, offending-row counts, five sample rows each);
2. pandera: the equivalent `DataFrameSchema` on the pandas DataFrame (dtypes, `nullable`,
   `Check.in_range`, `Check.isin`, a null-rate check, `unique=` on the key, a freshness check
   and a row-count check), validated with `lazy=True` so that, like keel, it reports everything;
3. hand-written: the same rules as a minimal vectorised pyarrow.compute function, returning the
   failed rules and offending-row counts, with no samples and no messages.

Two scenarios: the whole year against the January-June contract (the year drifts: six rules
fail), and January-June against its own contract (everything passes). The data is read and
converted once, outside the timings; each engine runs once to warm up, then `--repeat` times.

    .venv/bin/python benchmarks/contracts.py [--repeat 5] [--data PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pandera
import pandera.pandas as pdr
import pyarrow as pa
import pyarrow.compute as pc

from keel.contracts import Contract, check_contract, infer_contract
from keel.data import read_table

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "flights" / "data" / "nycflights13_flights.csv.gz"
KEY = ("year", "month", "day", "carrier", "flight", "origin")
#: Clocks eight or nine hours after the last departure of the data checked: fresh data.
END_OF_YEAR = datetime(2014, 1, 1, 12, tzinfo=UTC)
END_OF_JUNE = datetime(2013, 7, 1, 12, tzinfo=UTC)


# -- pandera: the same rules as a DataFrameSchema ----------------------------------------------


def pandera_schema(contract: Contract, frame: pd.DataFrame, now: datetime) -> pdr.DataFrameSchema:
    columns = {}
    for column in contract.columns:
        checks = []
        if column.range is not None:
            checks.append(pdr.Check.in_range(column.range.min, column.range.max))
        if column.domain is not None:
            checks.append(pdr.Check.isin(list(column.domain)))
        if column.max_null_rate is not None:
            bound = column.max_null_rate
            checks.append(
                pdr.Check(
                    lambda s, b=bound: s.isna().mean() <= b, ignore_na=False, name="null_rate"
                )
            )
        if contract.timestamp is not None and contract.timestamp.column == column.name:
            cutoff = pd.Timestamp(now - contract.timestamp.freshness)
            checks.append(pdr.Check(lambda s, c=cutoff: s.max() >= c, name="stale"))
        # The frame's own dtypes: pandas turns integer columns with nulls into float64.
        columns[column.name] = pdr.Column(
            frame[column.name].dtype, checks, nullable=column.nullable
        )
    rows = contract.rows
    table_checks = []
    if rows is not None:
        table_checks.append(
            pdr.Check(lambda df: rows.min <= len(df) <= rows.max, name="row_count")  # type: ignore[operator]
        )
    return pdr.DataFrameSchema(
        columns, checks=table_checks, unique=list(contract.key) or None, strict=False
    )


def run_pandera(schema: pdr.DataFrameSchema, frame: pd.DataFrame) -> set[str]:
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        return {f"{c} {k}" for c, k in zip(cases["column"], cases["check"], strict=True)}
    return set()


# -- hand-written: the same rules, minimal vectorised pyarrow.compute ----------------------


_KINDS: dict[str, Callable[[pa.DataType], bool]] = {
    "integer": pa.types.is_integer,
    "float": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "boolean": pa.types.is_boolean,
    "timestamp": pa.types.is_timestamp,
    "date": pa.types.is_date,
}


def run_handwritten(table: pa.Table, contract: Contract, now: datetime) -> dict[str, int]:
    failed: dict[str, int] = {}
    rows = table.num_rows
    bounds = contract.rows
    if bounds is not None and not (bounds.min or 0) <= rows <= (bounds.max or rows):
        failed["row_count"] = rows
    for column in contract.columns:
        name = column.name
        if name not in table.column_names:
            failed[f"{name} column_missing"] = rows
            continue
        values = table[name]
        if not _KINDS[column.type](values.type):
            failed[f"{name} type_mismatch"] = rows
            continue
        nulls = values.null_count
        if not column.nullable and nulls:
            failed[f"{name} nulls"] = nulls
        if column.max_null_rate is not None and nulls / rows > column.max_null_rate:
            failed[f"{name} null_rate"] = nulls
        if column.range is not None:
            low, high = column.range.min, column.range.max
            extremes = pc.min_max(values)
            if low is not None and extremes["min"].as_py() < low:
                failed[f"{name} below_min"] = pc.sum(pc.less(values, low)).as_py()
            if high is not None and extremes["max"].as_py() > high:
                failed[f"{name} above_max"] = pc.sum(pc.greater(values, high)).as_py()
        if column.domain is not None:
            known = pc.is_in(values, value_set=pa.array(list(column.domain)))
            unknown = pc.sum(pc.and_(pc.is_valid(values), pc.invert(known))).as_py()
            if unknown:
                failed[f"{name} unknown_category"] = unknown
    if contract.key:
        distinct = table.select(list(contract.key)).group_by(list(contract.key)).aggregate([])
        if distinct.num_rows != rows:
            failed["duplicate_key"] = rows - distinct.num_rows
    if contract.timestamp is not None:
        newest = pc.max(table[contract.timestamp.column]).as_py()
        if newest is None or now - newest > contract.timestamp.freshness:
            failed["stale"] = rows
    return failed


# -- timing ----------------------------------------------------------------------------------


def median_seconds(run: Callable[[], object], repeat: int) -> tuple[float, object]:
    result = run()  # warm-up: Arrow loads its compute kernels on first use
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per engine (default 5)")
    parser.add_argument("--data", type=Path, default=DATA, help="the flights CSV (gzip)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    table = read_table(args.data)
    read_seconds = time.perf_counter() - started
    first_half = table.filter(pc.less_equal(table["month"], 6))
    contract = infer_contract(first_half, key=KEY, source=str(args.data))
    frames = {"year": table.to_pandas(), "h1": first_half.to_pandas()}

    unkeyed = replace(contract, key=())
    scenarios = [
        ("whole year vs Jan-Jun contract (drifts)", table, frames["year"], contract, END_OF_YEAR),
        ("Jan-Jun vs its own contract (passes)", first_half, frames["h1"], contract, END_OF_JUNE),
        ("whole year, contract without the key rule", table, frames["year"], unkeyed, END_OF_YEAR),
    ]
    results = []
    for label, data, frame, rules, now in scenarios:
        schema = pandera_schema(rules, frame, now)
        keel_s, report = median_seconds(
            lambda d=data, c=rules, n=now: check_contract(d, c, now=n), args.repeat
        )
        pandera_s, pandera_failed = median_seconds(
            lambda s=schema, f=frame: run_pandera(s, f), args.repeat
        )
        hand_s, hand_failed = median_seconds(
            lambda d=data, c=rules, n=now: run_handwritten(d, c, n), args.repeat
        )
        results.append(
            {
                "scenario": label,
                "rows": data.num_rows,
                "keel_ms": keel_s * 1000,
                "pandera_ms": pandera_s * 1000,
                "handwritten_ms": hand_s * 1000,
                "keel_vs_pandera": keel_s / pandera_s,
                "keel_vs_handwritten": keel_s / hand_s,
                "keel_failed": sorted(f"{v.column} {v.rule}" for v in report.violations),  # type: ignore[attr-defined]
                "pandera_failed": sorted(pandera_failed),  # type: ignore[arg-type]
                "handwritten_failed": sorted(hand_failed),  # type: ignore[arg-type]
            }
        )

    environment = {
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "pandas": pd.__version__,
        "pandera": pandera.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "repeat": args.repeat,
        "read_seconds": read_seconds,
    }
    if args.json:
        print(json.dumps({"environment": environment, "results": results}, indent=2))
        return 0
    print(
        f"flights: {table.num_rows:,} rows x {table.num_columns} columns, read in "
        f"{read_seconds:.2f} s; contract inferred from Jan-Jun ({len(contract.columns)} columns, "
        f"key {', '.join(KEY)}); median of {args.repeat} runs after one warm-up"
    )
    print(
        f"python {environment['python']}, pyarrow {pa.__version__}, pandas {pd.__version__}, "
        f"pandera {pandera.__version__}, {environment['cpus']} CPUs\n"
    )
    print(
        "| scenario | rows | keel | pandera | hand-written | keel / pandera | keel / hand-written |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['scenario']} | {r['rows']:,} | {r['keel_ms']:.0f} ms | {r['pandera_ms']:.0f} ms "
            f"| {r['handwritten_ms']:.0f} ms | {r['keel_vs_pandera']:.2f} "
            f"| {r['keel_vs_handwritten']:.2f} |"
        )
    print()
    for r in results:
        print(f"{r['scenario']}:")
        for engine in ("keel", "pandera", "handwritten"):
            failed = r[f"{engine}_failed"]
            print(f"  {engine:<12} {len(failed)} failed: {', '.join(failed) or '-'}")
    return 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        # pandera and pandas may announce future changes; the figures are what matter here.
        warnings.simplefilter("ignore", FutureWarning)
        sys.exit(main())
