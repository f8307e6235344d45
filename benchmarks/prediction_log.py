"""Prediction log: the storage design, chosen by measurement, and `keel explain` latency with
10 million logged predictions.

    python benchmarks/prediction_log.py [--rows 10000000] [--hot 100000] [--write-rows 100000]
                                        [--postgres URL] [--json]

keel's design: the log's writer thread commits buffered rows every flush_interval, one
multi-row INSERT per transaction, into the metadata store's `predictions` table (JSON inputs
and outputs; SQLite WAL with synchronous=FULL); `compact` moves closed time ranges into
Parquet segments in the artifact store (one typed column per input and output, zstd, sorted
by id, 16,384-row groups), indexed in `prediction_segments`. Each part is measured next to
the simplest alternative that is just as durable:

  (a) write path   keel's log (1-row requests, as a server submits them) until durable, on a
                   fresh SQLite database (and PostgreSQL with --postgres); against one INSERT
                   and commit per row, and a JSON-lines file fsynced per 10,000 rows (keel's
                   commit size) or per row. Also the cost of `submit` on the request path.
  (b) window read  one hour holding 1,000,000 rows, as monitoring reads it (`read_window`: a
                   typed Arrow table): from segments; from rows not yet compacted (JSON in
                   the table; measured on --hot rows); from a JSON-lines file (scan, parse,
                   filter, build the same table).
  (c) get by id    with --rows predictions in segments and --hot rows in the table:
                   `keel.predlog.read.get` for ids in segments, in the table, and
                   unknown ids; against scanning a JSON-lines file (measured on 1,000,000
                   lines, scaled to --rows: a scan is linear).
  (d) explain      `explain_prediction` (the whole chain, as `keel explain --json` prints it)
                   for ids in segments and in the table, warm in one process; and the CLI as
                   a user runs it (a subprocess, start-up included).

Set-up (untimed): the flights example project (`keel init --example flights`), trained with
max_iter 20 on data up to 2013-07-01, v1 promoted to production by ana and approved by ben.
The --rows predictions are synthetic but shaped like real traffic: the real inference
contract (23 inputs, 2 outputs), inputs sampled from the real rows, 10 hours of ids and
times; they are written straight into segments and indexed (as `compact` would leave them).
Timings are medians (and p99 where stated) of repeated runs; `--json` prints every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from common import machine_summary
from keel.domain.identity import Actor
from keel.domain.prediction import LoggedPrediction
from keel.metadata import open_metadata_store
from keel.metadata.base import Predictions
from keel.predlog.ids import new_prediction_id
from keel.predlog.log import PredictionBatch
from keel.predlog.read import (
    BASE_COLUMNS,
    PARQUET_MEDIA_TYPE,
    SEGMENT_ROWS,
    get,
    read_window,
    segment_bytes,
)
from keel.predlog.writer import COMMIT_ROWS, StoredPredictionLog
from keel.project import Project

MODEL = "flights-delay"
AS_OF = datetime(2013, 7, 1, 6, tzinfo=UTC)
HOURS = 10  # the --rows predictions span this many hours: 1,000,000 an hour by default
TIMESTAMP = pa.timestamp("us", tz="UTC")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def _median(function: Callable[[], Any], repeat: int) -> float:
    return statistics.median(_timed(function) for _ in range(repeat))


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


# --- set-up -------------------------------------------------------------------------------


def make_project(folder: Path) -> Project:
    """The flights example, trained small, v1 in production through an approval."""
    from keel.pipeline.train import train
    from keel.release import approve, promote

    env = {"KEEL_USER": "ana"}
    Project.init(folder, example="flights", env=env).close()
    spec = yaml.safe_load((folder / "keel.yaml").read_text())
    spec["training"]["params"] = {"max_iter": 20, "learning_rate": 0.1, "max_leaf_nodes": 31}
    spec["release"] = {"gates": [], "approvals": {"required": 1}}
    (folder / "keel.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    project = Project.open(folder, env=env)
    train(project, as_of=AS_OF)
    request = promote(project, f"{MODEL}@1", "production", actor=Actor("ana"), reason="bench")
    assert request.request is not None
    approve(project, request.request.id, actor=Actor("ben"), comment="looked fine")
    return project


def raw_rows(project: Project) -> pa.Table:
    """The real raw rows, typed as the inference contract says (the pool inputs come from)."""
    contract = project.metadata.models.get(MODEL, 1).inference_contract
    table = project.load_dataset("latest")
    columns = {}
    for spec in contract["inputs"]:
        column = table[spec["name"]]
        if spec["type"] == "timestamp":
            column = pc.cast(column, TIMESTAMP)
        elif spec["type"] == "float":
            column = pc.cast(column, pa.float64())
        elif spec["type"] == "integer":
            column = pc.cast(column, pa.int64())
        columns[f"inputs.{spec['name']}"] = column
    return pa.table(columns)


def _ids(millis: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Prediction ids (UUIDv7 layout, 32 hex) for these times, as a sorted numpy S32 array."""
    count = len(millis)
    raw = np.zeros((count, 16), dtype=np.uint8)
    for byte in range(6):
        raw[:, byte] = (millis >> (8 * (5 - byte))) & 0xFF
    raw[:, 6:] = rng.integers(0, 256, (count, 10), dtype=np.uint8)
    raw[:, 6] = 0x70 | (raw[:, 6] & 0x0F)  # version 7
    raw[:, 8] = 0x80 | (raw[:, 8] & 0x3F)  # variant 10
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    text = np.empty((count, 32), dtype=np.uint8)
    text[:, 0::2] = digits[raw >> 4]
    text[:, 1::2] = digits[raw & 0x0F]
    return np.sort(text.view("S32").ravel())


def synthetic_segment(
    pool: pa.Table, rows: int, first_ms: int, last_ms: int, rng: np.random.Generator
) -> pa.Table:
    """`rows` predictions between two times, laid out as `compact` writes a segment."""
    millis = np.sort(rng.integers(first_ms, last_ms, rows, dtype=np.int64))
    ids = _ids(millis, rng)
    sample = pool.take(pa.array(rng.integers(0, pool.num_rows, rows)))
    probability = rng.random(rows)
    slots = np.where(rng.random(rows) < 0.95, "production", "canary")
    base = [
        pa.array(ids).cast(pa.string()),
        pa.array(millis * 1000, pa.int64()).cast(TIMESTAMP),
        pa.array([MODEL] * rows, pa.string()),
        pa.array(np.ones(rows, dtype=np.int64)),
        pa.array(slots, pa.string()),
        pa.nulls(rows, pa.string()),
        pa.nulls(rows, pa.string()),
        pa.array(rng.gamma(2.0, 1.5, rows)),
    ]
    outputs = [
        pa.array((probability > 0.5).astype(np.int64)),
        pa.array(probability),
    ]
    names = [*BASE_COLUMNS.names, *sample.column_names, "outputs.prediction", "outputs.probability"]
    return pa.Table.from_arrays([*base, *sample.columns, *outputs], names=names).cast(
        pa.schema(
            [
                *BASE_COLUMNS,
                *sample.schema,
                pa.field("outputs.prediction", pa.int64()),
                pa.field("outputs.probability", pa.float64()),
            ]
        )
    )


def index_segment(project: Project, table: pa.Table) -> int:
    """Store a segment and index it directly (benchmark set-up: no rows to delete)."""
    times = table["at"]
    return index_segment_bytes(
        project,
        segment_bytes(table),
        first_at=pc.min(times).as_py(),
        last_at=pc.max(times).as_py(),
        min_id=table["id"][0].as_py(),
        max_id=table["id"][-1].as_py(),
        rows=table.num_rows,
    )


def index_segment_bytes(
    project: Project,
    data: bytes,
    *,
    first_at: datetime,
    last_at: datetime,
    min_id: str,
    max_id: str,
    rows: int,
) -> int:
    """`index_segment` for a segment already encoded by `segment_bytes` (elsewhere, e.g. in
    another process): stored, recorded and indexed as `compact` does."""
    from sqlalchemy import insert

    from keel.metadata.sql.predictions import segment_holder
    from keel.metadata.sql.schema import artifact_holders, prediction_segments

    stored = project.artifacts.put_bytes(data)
    project.metadata.artifacts.record(
        stored.digest, size=stored.size, media_type=PARQUET_MEDIA_TYPE, actor="bench"
    )
    now = datetime.now(UTC)
    engine = project.metadata._engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            insert(prediction_segments).values(
                digest=str(stored.digest),
                model=MODEL,
                version=1,
                first_at=first_at,
                last_at=last_at,
                min_id=min_id,
                max_id=max_id,
                row_count=rows,
                size=stored.size,
                created_at=now,
            )
        )
        conn.execute(
            insert(artifact_holders).values(
                digest=str(stored.digest), holder=segment_holder(MODEL, 1), created_at=now
            )
        )
    return stored.size


def request_batches(
    pool: pa.Table, count: int, at: datetime | None = None
) -> list[PredictionBatch]:
    """`count` one-row requests with real inputs, as the server hands them to the log."""
    records = pool.slice(0, min(count, pool.num_rows)).to_pylist()
    batches = []
    for index in range(count):
        record = records[index % len(records)]
        inputs = {
            name.removeprefix("inputs."): [
                value.isoformat() if isinstance(value, datetime) else value
            ]
            for name, value in record.items()
        }
        batches.append(
            PredictionBatch(
                ids=[new_prediction_id()],
                at=at or datetime.now(UTC),
                model=MODEL,
                version=1,
                slot="production",
                inputs=inputs,
                outputs={"prediction": [index % 2], "probability": [0.37]},
                latency_ms=1.2,
            )
        )
    return batches


# --- (a) write path -----------------------------------------------------------------------


def bench_keel_log(store: Predictions, batches: list[PredictionBatch]) -> dict[str, float]:
    log = StoredPredictionLog(store, flush_interval=0.2)
    costs = []
    started = time.perf_counter()
    for batch in batches:
        before = time.perf_counter_ns()
        log.submit(batch)
        costs.append((time.perf_counter_ns() - before) / 1000)
    log.flush()
    seconds = time.perf_counter() - started
    log.close()
    return {
        "rows": len(batches),
        "seconds": seconds,
        "rows_per_s": len(batches) / seconds,
        "submit_p50_us": _percentile(costs, 50),
        "submit_p99_us": _percentile(costs, 99),
    }


def _rows_of(batches: list[PredictionBatch]) -> list[LoggedPrediction]:
    return [
        LoggedPrediction(
            b.ids[0],
            b.at,
            b.model,
            b.version,
            b.slot,
            {k: v[0] for k, v in b.inputs.items()},
            {k: v[0] for k, v in b.outputs.items()},
            b.latency_ms,
        )
        for b in batches
    ]


def bench_row_per_commit(store: Predictions, batches: list[PredictionBatch]) -> dict[str, float]:
    rows = _rows_of(batches)
    seconds = _timed(lambda: [store.add([row]) for row in rows])
    return {"rows": len(rows), "seconds": seconds, "rows_per_s": len(rows) / seconds}


def _jsonl_line(row: LoggedPrediction) -> bytes:
    return orjson.dumps(row.to_dict()) + b"\n"


def bench_jsonl(path: Path, batches: list[PredictionBatch], every: int) -> dict[str, float]:
    rows = _rows_of(batches)

    def write() -> None:
        with path.open("ab") as handle:
            for start in range(0, len(rows), every):
                handle.write(b"".join(_jsonl_line(r) for r in rows[start : start + every]))
                handle.flush()
                os.fsync(handle.fileno())

    seconds = _timed(write)
    return {"rows": len(rows), "seconds": seconds, "rows_per_s": len(rows) / seconds}


def bench_write(root: Path, pool: pa.Table, rows: int, postgres: str | None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    warm = request_batches(pool, 2_000)
    batches = request_batches(pool, rows)
    with open_metadata_store(f"sqlite:///{root / 'write' / 'keel.db'}") as store:
        bench_keel_log(store.predictions, warm)
        results["keel_sqlite"] = bench_keel_log(store.predictions, batches)
        results["row_per_commit_sqlite"] = bench_row_per_commit(
            store.predictions, request_batches(pool, 1_000)
        )
    files = [root / "write" / name for name in ("keel.db", "keel.db-wal")]
    size = sum(f.stat().st_size for f in files if f.exists())
    results["sqlite_bytes_per_row"] = size / (len(warm) + rows + 1_000)
    if postgres:
        with open_metadata_store(postgres) as store:
            bench_keel_log(store.predictions, warm)
            results["keel_postgresql"] = bench_keel_log(store.predictions, batches)
            results["row_per_commit_postgresql"] = bench_row_per_commit(
                store.predictions, request_batches(pool, 1_000)
            )
    results["jsonl_batched"] = bench_jsonl(root / "write.jsonl", batches, COMMIT_ROWS)
    results["jsonl_row_per_fsync"] = bench_jsonl(
        root / "write1.jsonl", request_batches(pool, 1_000), 1
    )
    return results


# --- (b) window reads and (c) lookups -----------------------------------------------------


def write_jsonl(path: Path, table: pa.Table) -> int:
    """The window's rows as JSON lines (the simplest log), in 100,000-row slices."""
    with path.open("wb") as handle:
        for start in range(0, table.num_rows, 100_000):
            for record in table.slice(start, 100_000).to_pylist():
                document = {
                    "id": record["id"],
                    "at": record["at"].isoformat(),
                    "model": record["model"],
                    "version": record["version"],
                    "slot": record["slot"],
                    "latency_ms": record["latency_ms"],
                    "inputs": {
                        k.removeprefix("inputs."): (v.isoformat() if isinstance(v, datetime) else v)
                        for k, v in record.items()
                        if k.startswith("inputs.")
                    },
                    "outputs": {
                        k.removeprefix("outputs."): v
                        for k, v in record.items()
                        if k.startswith("outputs.")
                    },
                }
                handle.write(orjson.dumps(document) + b"\n")
    return path.stat().st_size


def jsonl_window(path: Path, start: datetime, end: datetime) -> pa.Table:
    """Scan, parse, filter by time and build the same typed table read_window returns."""
    low, high = start.isoformat(), end.isoformat()
    rows = []
    with path.open("rb") as handle:
        for line in handle:
            document = orjson.loads(line)
            if low <= document["at"] < high:  # ISO 8601 in UTC sorts as text
                flat = {k: document[k] for k in ("id", "at", "model", "version", "slot")}
                flat["latency_ms"] = document["latency_ms"]
                for part in ("inputs", "outputs"):
                    for name, value in document[part].items():
                        flat[f"{part}.{name}"] = value
                rows.append(flat)
    table = pa.Table.from_pylist(rows)
    times = [c for c in table.column_names if c in ("at", "inputs.time_hour")]
    for name in times:
        index = table.column_names.index(name)
        table = table.set_column(index, name, pc.cast(table[name], TIMESTAMP))
    return table


def jsonl_get(path: Path, prediction_id: str) -> dict[str, Any] | None:
    needle = prediction_id.encode()
    with path.open("rb") as handle:
        for line in handle:
            if needle in line:
                document: dict[str, Any] = orjson.loads(line)
                if document["id"] == prediction_id:
                    return document
    return None


def _lookups(function: Callable[[str], Any], ids: Sequence[str]) -> dict[str, float]:
    costs = []
    for prediction_id in ids:
        started = time.perf_counter()
        function(prediction_id)
        costs.append((time.perf_counter() - started) * 1000)
    return {"count": len(ids), "p50_ms": _percentile(costs, 50), "p99_ms": _percentile(costs, 99)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="predictions in segments")
    parser.add_argument("--hot", type=int, default=100_000, help="rows not yet compacted")
    parser.add_argument("--write-rows", type=int, default=100_000, help="rows in (a)")
    parser.add_argument("--postgres", default=None, metavar="URL", help="also (a) on this DB")
    parser.add_argument(
        "--only-write", action="store_true", help="run (a) only (e.g. with --postgres)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(7)
    document: dict[str, Any] = {"rows": args.rows, "hot": args.hot, "machine": machine_summary()}
    root = Path(tempfile.mkdtemp(prefix="keel-bench-predlog-"))
    try:
        _say("set-up: the flights example, trained, v1 approved to production...")
        started = time.perf_counter()
        project = make_project(root / "flights")
        pool = raw_rows(project)
        _say(f"  {time.perf_counter() - started:.0f} s")

        _say("(a) write path...")
        document["write"] = bench_write(root, pool, args.write_rows, args.postgres)
        if args.only_write:
            project.close()
            print(json.dumps(document, indent=2) if args.json else report_write(document))
            return 0

        _say(f"set-up: {args.rows:,} predictions in segments, {args.hot:,} in the table...")
        started = time.perf_counter()
        end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        begin = end - timedelta(hours=HOURS)
        first_ms, last_ms = int(begin.timestamp() * 1000), int(end.timestamp() * 1000)
        count = math.ceil(args.rows / SEGMENT_ROWS)
        segment_ids: list[str] = []
        window_parts: list[pa.Table] = []
        window_start = begin + timedelta(hours=HOURS // 2)
        window_end = window_start + timedelta(hours=1)
        size = 0
        for index in range(count):
            rows = min(SEGMENT_ROWS, args.rows - index * SEGMENT_ROWS)
            low = first_ms + (last_ms - first_ms) * index // count
            high = first_ms + (last_ms - first_ms) * (index + 1) // count
            table = synthetic_segment(pool, rows, low, high, rng)
            size += index_segment(project, table)
            picks = rng.integers(0, rows, 8)
            segment_ids.extend(table["id"].take(pa.array(picks)).to_pylist())
            if high > window_start.timestamp() * 1000 and low < window_end.timestamp() * 1000:
                window_parts.append(table)
        with StoredPredictionLog(project.metadata.predictions, flush_interval=0.2) as log:
            hot_batches = request_batches(pool, args.hot, datetime.now(UTC))
            for batch in hot_batches:
                log.submit(batch)
        hot_ids = [b.ids[0] for b in hot_batches]
        document["segments"] = {
            "count": count,
            "bytes": size,
            "bytes_per_row": size / args.rows,
            "setup_seconds": time.perf_counter() - started,
        }
        _say(f"  {time.perf_counter() - started:.0f} s, {size / 1e6:,.0f} MB of segments")

        _say("(b) window reads...")
        expected = sum(
            pc.sum(
                pc.and_(
                    pc.greater_equal(t["at"], pa.scalar(window_start, TIMESTAMP)),
                    pc.less(t["at"], pa.scalar(window_end, TIMESTAMP)),
                )
            ).as_py()
            for t in window_parts
        )
        read_window(project, MODEL, window_start, window_end)  # warm-up
        whole = _median(lambda: read_window(project, MODEL, window_start, window_end), 3)
        some = ["id", "at", "inputs.distance", "inputs.carrier", "outputs.probability"]
        narrow = _median(
            lambda: read_window(project, MODEL, window_start, window_end, columns=some), 3
        )
        got = read_window(project, MODEL, window_start, window_end)
        assert got.num_rows == expected, (got.num_rows, expected)
        hot_start = datetime.now(UTC) - timedelta(hours=1)
        hot_end = datetime.now(UTC) + timedelta(minutes=1)
        hot_seconds = _median(lambda: read_window(project, MODEL, hot_start, hot_end), 3)
        assert read_window(project, MODEL, hot_start, hot_end).num_rows == args.hot
        jsonl = root / "window.jsonl"
        jsonl_bytes = write_jsonl(jsonl, pa.concat_tables(window_parts))
        jsonl_seconds = _timed(lambda: jsonl_window(jsonl, window_start, window_end))
        assert jsonl_window(jsonl, window_start, window_end).num_rows == expected
        jsonl_lines = sum(t.num_rows for t in window_parts)
        document["window"] = {
            "rows": expected,
            "segments_seconds": whole,
            "segments_5_columns_seconds": narrow,
            "table_rows": args.hot,
            "table_seconds": hot_seconds,
            "table_seconds_per_million": hot_seconds / args.hot * 1e6,
            "jsonl_seconds": jsonl_seconds,
            "jsonl_lines": jsonl_lines,
            "jsonl_bytes_per_row": jsonl_bytes / jsonl_lines,
        }

        _say("(c) get by id...")
        picks = [segment_ids[i] for i in rng.permutation(len(segment_ids))[:200]]
        for prediction_id in picks[:3]:
            assert get(project, prediction_id) is not None
        # Inside a segment's id range, so the segment is opened and searched.
        middle = (begin + timedelta(hours=3, minutes=7)).timestamp()
        unknown = [new_prediction_id(middle) for _ in range(50)]
        hot_picks = [hot_ids[i] for i in rng.integers(0, len(hot_ids), 200)]
        scan_ids = jsonl_window_ids(window_parts, rng, 5)
        scan = _lookups(lambda i: jsonl_get(jsonl, i), scan_ids)
        document["get"] = {
            "segment": _lookups(lambda i: get(project, i), picks),
            "table": _lookups(lambda i: get(project, i), hot_picks),
            "unknown": _lookups(lambda i: get(project, i), unknown),
            "jsonl_scan_1m": scan,
            "jsonl_scan_scaled_ms": scan["p50_ms"] * args.rows / jsonl_lines,
        }

        _say("(d) explain...")
        from keel.serving.explain import explain_prediction

        chain = explain_prediction(project, picks[0])
        assert chain["release"]["releases"][0]["approvals"][0]["actor"] == "ben"
        document["explain"] = {
            "segment": _lookups(lambda i: explain_prediction(project, i), picks[:50]),
            "table": _lookups(lambda i: explain_prediction(project, i), hot_picks[:50]),
            "cli_seconds": cli_explain(root / "flights", picks[:3]),
        }
        project.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        report(document)
    return 0


def jsonl_window_ids(parts: list[pa.Table], rng: np.random.Generator, count: int) -> list[str]:
    table = parts[len(parts) // 2]
    return [table["id"][int(i)].as_py() for i in rng.integers(0, table.num_rows, count)]


def cli_explain(folder: Path, ids: Sequence[str]) -> float:
    """`keel explain ID --json` as a user runs it: a fresh process each time."""
    keel = Path(sys.executable).with_name("keel")
    env = {**os.environ, "KEEL_USER": "ana"}
    seconds = []
    for prediction_id in ids:
        started = time.perf_counter()
        subprocess.run(
            [str(keel), "-C", str(folder), "explain", prediction_id, "--json"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def report_write(document: dict[str, Any]) -> str:
    write = document["write"]
    lines = [document["machine"], "", "(a) write path, 1-row requests until durable:"]
    keel = write["keel_sqlite"]
    for name, label in (
        ("keel_sqlite", "keel log, SQLite FULL"),
        ("keel_postgresql", "keel log, PostgreSQL"),
        ("row_per_commit_sqlite", "INSERT+commit per row, SQLite"),
        ("row_per_commit_postgresql", "INSERT+commit per row, PostgreSQL"),
        ("jsonl_batched", f"JSON lines, fsync per {COMMIT_ROWS:,}"),
        ("jsonl_row_per_fsync", "JSON lines, fsync per row"),
    ):
        if name in write:
            rate = write[name]["rows_per_s"]
            lines.append(
                f"  {label:<36} {rate:>10,.0f} rows/s  keel/this {keel['rows_per_s'] / rate:6.2f}"
            )
    lines.append(
        f"  submit on the request path: p50 {keel['submit_p50_us']:.1f} us, "
        f"p99 {keel['submit_p99_us']:.1f} us; SQLite {write['sqlite_bytes_per_row']:.0f} B/row"
    )
    return "\n".join(lines)


def report(document: dict[str, Any]) -> None:
    window, lookups, explain = document["window"], document["get"], document["explain"]
    print(f"prediction log: {document['rows']:,} predictions + {document['hot']:,} recent")
    print(report_write(document))
    print(f"\n(b) window of one hour, {window['rows']:,} rows -> typed Arrow table:")
    print(f"  segments, all columns       {window['segments_seconds']:8.2f} s")
    print(f"  segments, 5 columns         {window['segments_5_columns_seconds']:8.2f} s")
    print(
        f"  table rows (JSON)           {window['table_seconds_per_million']:8.2f} s per million "
        f"(measured on {window['table_rows']:,})"
    )
    print(
        f"  JSON lines scan             {window['jsonl_seconds']:8.2f} s "
        f"({window['jsonl_lines']:,} lines)  jsonl/keel "
        f"{window['jsonl_seconds'] / window['segments_seconds']:.1f}x"
    )
    print(
        f"  bytes per row: segments {document['segments']['bytes_per_row']:.0f}, "
        f"JSON lines {window['jsonl_bytes_per_row']:.0f}"
    )
    print(f"\n(c) get by id with {document['rows'] + document['hot']:,} logged:")
    for name in ("segment", "table", "unknown"):
        item = lookups[name]
        print(f"  {name:<10} p50 {item['p50_ms']:7.2f} ms  p99 {item['p99_ms']:7.2f} ms")
    print(
        f"  JSON lines scan: {lookups['jsonl_scan_1m']['p50_ms']:.0f} ms per million lines, "
        f"{lookups['jsonl_scan_scaled_ms'] / 1000:.1f} s at {document['rows']:,}"
    )
    print("\n(d) explain:")
    for name in ("segment", "table"):
        item = explain[name]
        print(f"  {name:<10} p50 {item['p50_ms']:7.2f} ms  p99 {item['p99_ms']:7.2f} ms")
    print(f"  CLI `keel explain ID --json`, fresh process: {explain['cli_seconds']:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
