"""Manifest versions profiled on Spark: the manifest's files shared out among Spark's tasks.

    scanned = scan_manifest("spark://host:7077", {}, where, manifest, timestamp="time_hour")

The driver lists the table and builds the manifest (`keel.data.manifest`: sizes, digests or
ETags, the Delta log), as in-process; no Spark is needed for that. The profile is the work:
Spark runs a job over the manifest's file numbers (`SparkSession.range`, contiguous stretches
of files per partition) and `DataFrame.mapInArrow` hands each partition its stretch. The task
reads those files, one at a time, with keel's own reader and runs the step every file goes
through in-process (`keel.data.manifest.scan_files`: row index left out, Delta partition
values added, timestamp column typed, files combined, counted into mergeable sketches), and
emits one row: its `keel.data.scan.ScanPart` as JSON. The driver merges the parts in file
order and `ScanPart.result` gives the version's profile, schema and time range.

keel's reader rather than Spark's, because the version must describe what `load_table` reads
back: the same files, the same types (Spark would turn uint64 into decimals and millisecond
timestamps into microseconds, and has no rule for files whose types widen), the same Delta
partition values, and the same errors naming the same file. So every node reads the files
where the manifest says they are: a local folder must be at the same path on every node (a
shared file system), an `s3://` table is read through s3fs with the nodes' AWS credentials,
as keel reads it in-process. A task reads whole files, so the unit of work is a file; memory
per task is one file, as in-process.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from keel.engines.spark import spark_job, spark_session

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.data.lake import Location
    from keel.data.scan import Scanned
    from keel.domain.dataset import Manifest

__all__ = ["scan_manifest"]

_OUTPUT_SCHEMA: Final = "first long, part string"
#: Bytes of files per partition above which the job has more partitions than twice the
#: cluster's cores: tasks of bounded length on big tables, few merges on small ones.
_PARTITION_BYTES: Final = 256 << 20


def scan_manifest(
    master: str | None,
    conf: Mapping[str, str],
    where: Location,
    manifest: Manifest,
    timestamp: str | None,
) -> Scanned:
    """What the version records of the manifest's files, computed on Spark (see the module
    docstring). `DataError` naming the first file that cannot be read or joined to the ones
    before it (as in-process); `EngineError` when the job fails."""
    from keel.data.manifest import file_names
    from keel.data.scan import ScanPart

    session = spark_session(master, conf)
    count = len(manifest.files)
    with spark_job(f"profiling {where.url}", where.url):
        cores = max(1, int(session.sparkContext.defaultParallelism))
        partitions = min(count, max(2 * cores, math.ceil(manifest.bytes / _PARTITION_BYTES)))
        numbers = session.range(0, count, 1, partitions)
        scan = partial(_scan_partition, manifest.to_dict(), timestamp)
        rows = numbers.mapInArrow(scan, _OUTPUT_SCHEMA).collect()
    merged: ScanPart | None = None
    for _first, document in sorted(rows, key=lambda row: int(row[0])):
        part = ScanPart.from_json(document)
        if merged is None:
            merged = part
        else:
            merged.merge(part)
    if merged is None:
        merged = ScanPart(timestamp)
    return merged.result(file_names(where, manifest))


def _scan_partition(
    document: dict[str, Any], timestamp: str | None, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """Runs on the executors: a partition's file numbers in, one row (its part) out."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.data.lake import location
    from keel.data.manifest import scan_files
    from keel.domain.dataset import Manifest
    from keel.faults import pause_point

    pause_point("engine.spark.partition")
    indices = [int(i) for batch in batches for i in batch.column(0).to_pylist()]
    if not indices:
        return
    indices.sort()
    manifest = Manifest.from_dict(document)
    # No stat cache here: an executor only reads, the driver checked the identities.
    with contextlib.closing(location(manifest.location)) as where:
        part = scan_files(where, manifest, timestamp, indices)
    yield pa.RecordBatch.from_pydict(
        {"first": [indices[0]], "part": [part.to_json()]},
        schema=pa.schema([("first", pa.int64()), ("part", pa.string())]),
    )
