"""A contract check on Spark: each partition's figures where it lives, judged on the driver.

`DataFrame.mapInArrow` runs `_partition_figures` on every partition: it receives the partition
as Arrow batches, computes the `ContractPartial` of each bounded chunk (`arrow_chunks`;
keel.contracts.partial: null counts, extremes, rows beyond the bounds, values outside the
domains, the newest timestamp, the first offending rows) and emits one row, the partition's
partial. The driver merges them in
partition order and judges them with the same code as the in-process check
(`keel.contracts.check.judge_contract`), so both engines give the same verdicts and counts.

Key uniqueness is the one rule no partition can decide alone: it is a Spark aggregation
(`groupBy` on the key, nulls grouping together as in-process), run only when the contract has a
key whose columns are present and well typed. Its example key is the repeated key seen first in
Spark's partition order, which need not be the file order the in-process check follows; samples
are likewise the first offending rows in partition order. Counts and verdicts do not depend on
the order.

Partials travel from the executors as pickles of keel's own frozen dataclasses: the executors
run keel from the same installation as the driver, and nothing else writes into that column.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.contracts import Contract, ContractReport
    from keel.contracts.partial import ContractPartial, DuplicateKeys

__all__ = ["check_on_spark", "check_source"]

_OUTPUT_SCHEMA: Final = "partition int, figures binary"
_ROW: Final = "__keel_row"
_COUNT: Final = "__keel_count"
_FIRST: Final = "__keel_first"


def check_source(
    source: str | Sequence[str],
    contract: Contract,
    *,
    now: datetime,
    max_samples: int = 5,
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
) -> ContractReport:
    """`source` (what `SparkEngine.sketch` reads: a file, glob, folder or URL; or a list of
    such files, as a manifest names them) read by Spark and held against `contract`.

    `DataError` when Spark cannot read it, `EngineError` when the job fails,
    `DependencyMissing` without pyspark."""
    from keel.engines.spark import read_paths, spark_job, spark_paths, spark_session

    sources = [source] if isinstance(source, str) else list(source)
    shown = sources[0] if len(sources) == 1 else f"{sources[0]} and {len(sources) - 1} more"
    paths, file_format = spark_paths(sources, shown)
    session = spark_session(master, conf)
    with spark_job(f"checking {shown} against its contract", shown):
        frame = read_paths(session, paths, file_format)
        return check_on_spark(frame, contract, now=now, max_samples=max_samples)


def check_on_spark(
    frame: Any, contract: Contract, *, now: datetime, max_samples: int
) -> ContractReport:
    """`frame` (a Spark DataFrame) held against `contract`; call it inside `spark_job`."""
    import time

    from keel.contracts.check import judge_contract
    from keel.contracts.partial import ContractPartial
    from keel.engines.spark import by_position

    started = time.perf_counter()
    positioned, names = by_position(frame)
    work = partial(_partition_figures, names, contract, now, max_samples)
    rows = positioned.mapInArrow(work, _OUTPUT_SCHEMA).collect()
    merged: ContractPartial | None = None
    for _partition, blob in sorted(rows, key=lambda row: row[0]):
        part: ContractPartial = pickle.loads(blob)  # noqa: S301 - written by keel's executors
        merged = part if merged is None else merged.merge(part)
    if merged is None:  # no rows at all: the figures of the empty table, columns and all
        merged = ContractPartial.of(frame.limit(0).toArrow(), contract, now=now)
    return judge_contract(
        merged,
        contract,
        now=now,
        duplicates=lambda key: _duplicates(frame, key, max_samples),
        started=started,
    )


def _partition_figures(
    names: Sequence[str],
    contract: Contract,
    now: datetime,
    max_samples: int,
    batches: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """Runs on the executors: one partition's Arrow batches in, one row (its partial) out."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    from pyspark import TaskContext

    from keel.contracts.partial import ContractPartial
    from keel.engines.spark import arrow_chunks
    from keel.faults import pause_point

    pause_point("engine.spark.partition")
    context = TaskContext.get()
    part = context.partitionId() if context is not None else 0
    figures: ContractPartial | None = None
    offset = 0
    for table in arrow_chunks(batches, names):
        piece = ContractPartial.of(
            table, contract, now=now, max_samples=max_samples, part=part, offset=offset
        )
        figures = piece if figures is None else figures.merge(piece)
        offset += table.num_rows
    if figures is None:
        return
    yield pa.RecordBatch.from_pydict(
        {"partition": [part], "figures": [pickle.dumps(figures)]},
        schema=pa.schema([("partition", pa.int32()), ("figures", pa.binary())]),
    )


def _duplicates(frame: Any, key: tuple[str, ...], max_samples: int) -> DuplicateKeys:
    """Repeated keys by a Spark aggregation: how many rows and keys, the first key (in
    partition order) with its rows, and the first rows of the first repeated keys."""
    from pyspark.sql import functions as F

    from keel.contracts.partial import DuplicateKeys
    from keel.engines.spark import quoted

    aliases = [f"__keel_k{i}" for i in range(len(key))]
    numbered = frame.withColumn(_ROW, F.monotonically_increasing_id())
    # Kept once computed: the totals, the first keys and their rows all read it, and each
    # would otherwise scan and shuffle the whole table again.
    groups = (
        numbered.groupBy(*(quoted(name).alias(a) for name, a in zip(key, aliases, strict=True)))
        .agg(F.count(F.lit(1)).alias(_COUNT), F.min(_ROW).alias(_FIRST))
        .filter(F.col(_COUNT) > 1)
        .persist()
    )
    try:
        totals = groups.agg(F.sum(_COUNT), F.count(F.lit(1))).collect()[0]
        if not totals[1]:
            return DuplicateKeys(0, 0)
        firsts = groups.orderBy(_FIRST).limit(max(max_samples, 1))
        first = firsts.limit(1).toArrow().to_pylist()[0]
        condition = None
        for name, alias in zip(key, aliases, strict=True):
            same = quoted(name).eqNullSafe(F.col(alias))
            condition = same if condition is None else condition & same
        samples: list[dict[str, Any]] = []
        if max_samples > 0:
            picked = (
                numbered.join(F.broadcast(firsts), condition, "left_semi")
                .orderBy(_ROW)
                .limit(max_samples)
                .drop(_ROW)
            )
            samples = picked.toArrow().to_pylist()
    finally:
        groups.unpersist()
    return DuplicateKeys(
        rows=int(totals[0]),
        keys=int(totals[1]),
        example={name: first[alias] for name, alias in zip(key, aliases, strict=True)},
        example_rows=int(first[_COUNT]),
        samples=tuple(samples),
    )
