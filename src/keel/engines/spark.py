"""The Spark engine: each partition sketched where it lives, the sketches merged on the driver.

    engine = SparkEngine("local[2]", {})
    sketch, rows = engine.sketch("/lake/flights/")   # a folder, glob, file or s3a:// path

The source is read by Spark (Parquet, or CSV with a header), then `DataFrame.mapInArrow` runs
`_sketch_partition` on every partition: it receives the partition as Arrow record batches (no
pandas round trip), sketches them (`TableSketch.of` on bounded chunks, merged) and emits one
row, the partition's sketch as JSON. The driver collects those rows (a few KB per column each)
and merges them in partition order. So executors need keel installed, as they need pyarrow.

One SparkSession per process (`getOrCreate`): keel's settings go to the session it creates, and
a session that already runs (spark-submit, a notebook) is reused as it is. The Python workers
run this interpreter unless `PYSPARK_PYTHON` or `spark.pyspark.python` says otherwise, so that
a local master sees keel and pyarrow.

Local sources are listed the way `keel.data` lists them (the same files, sorted, hidden and
`_`-prefixed entries skipped) and handed to Spark by name. Remote ones (`s3a://`, `hdfs://`,
`abfss://`, `gs://`, `dbfs:/`) go to Spark as given: a name ending in `.csv` (or `.csv.gz`,
...) is CSV, anything else Parquet. CSV on Spark is read with Spark's own type inference, empty
fields and `NA` as nulls, `"` as the escape, and a malformed row failing the job rather than
becoming nulls (the in-process reader also takes `null`, `N/A` and the like as nulls: prefer
Parquet when both engines must read a file alike).
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.data.lake import Location
    from keel.data.scan import Scanned
    from keel.domain.dataset import Manifest
    from keel.stats.sketch import TableSketch

__all__ = [
    "SESSION_DEFAULTS",
    "SparkEngine",
    "arrow_chunks",
    "by_position",
    "quoted",
    "read_paths",
    "spark_job",
    "spark_paths",
    "spark_session",
]

#: What keel sets on a session it creates, under the user's `engine.conf`.
SESSION_DEFAULTS: Final[Mapping[str, str]] = {
    "spark.app.name": "keel",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Timestamps without a zone mean the same instant on every machine, as in-process.
    "spark.sql.session.timeZone": "UTC",
    # The bar interleaves with keel's own output on the terminal.
    "spark.ui.showConsoleProgress": "false",
}
#: Arrow bytes a partition's sketcher holds before it sketches them: bounded memory per task
#: whatever the partition's size, and few merges.
_CHUNK_BYTES: Final = 64 << 20
_OUTPUT_SCHEMA: Final = "partition int, sketch string"
#: A URL Spark resolves itself: `s3a://`, `hdfs://`, `gs://`, `abfss://`, Databricks' `dbfs:/`.
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):/")
_CSV_SUFFIXES: Final = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.deflate", ".csv.snappy")
#: Spark's words for a file that is not what its name says: bad input, like in-process.
_BAD_DATA: Final = ("[MALFORMED_", "CANNOT_READ_FILE_FOOTER", "is not a Parquet file")
_CSV_OPTIONS: Final[Mapping[str, str]] = {
    "header": "true",
    "inferSchema": "true",
    "enforceSchema": "false",
    "mode": "FAILFAST",
    "nullValue": "NA",
    "escape": '"',
}


def _pyspark_missing() -> Exception:
    from keel.errors import DependencyMissing

    return DependencyMissing("pyspark", "spark", "--engine spark")


def spark_session(master: str | None = None, conf: Mapping[str, str] | None = None) -> Any:
    """This process's SparkSession: the running one, else a new one on `master` (default: the
    master spark-submit gave, else `local[*]`) with keel's defaults and `conf`.

    `DependencyMissing` naming the `spark` extra without pyspark; `EngineError` when Spark
    cannot start (no Java, an unreachable master)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise _pyspark_missing() from None
    from keel.errors import EngineError

    settings = {**SESSION_DEFAULTS, **(conf or {})}
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    python = settings.get("spark.pyspark.python") or os.environ.get("PYSPARK_PYTHON")
    # pyspark reads the workers' interpreter from the environment only, when the context
    # starts: without it they run `python3` from PATH, which may lack keel and pyarrow.
    os.environ["PYSPARK_PYTHON"] = python or sys.executable
    builder = SparkSession.builder
    if master is not None:
        builder = builder.master(master)
    elif "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit
        builder = builder.master("local[*]")
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        with _no_pandas_warning():
            return builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - pyspark raises plain exceptions for a JVM that died
        raise EngineError(
            f"Spark could not start{f' on {master}' if master else ''}: {_first_line(exc)}",
            engine="spark",
            hint="Spark needs Java 17 or newer (java -version; JAVA_HOME) and a reachable "
            "master (engine.master, --spark-master)",
        ) from None


class SparkEngine:
    """Sketches a source on Spark: partitions in `mapInArrow`, merged on the driver."""

    name = "spark"

    def __init__(self, master: str | None = None, conf: Mapping[str, str] | None = None) -> None:
        self.master = master
        self.conf = dict(conf or {})

    def sketch(self, source: str, columns: Sequence[str] | None = None) -> tuple[TableSketch, int]:
        from keel.errors import DataError
        from keel.stats.sketch import TableSketch

        paths, file_format = _paths(source)
        session = spark_session(self.master, self.conf)
        with spark_job(f"sketching {source}", source):
            frame = read_paths(session, paths, file_format)
            if columns is not None:
                from keel.engines.local import check_columns

                check_columns(source, frame.columns, columns)
                frame = frame.select(*(quoted(name) for name in columns))
            frame, names = by_position(frame)
            parts = frame.mapInArrow(partial(_sketch_partition, names), _OUTPUT_SCHEMA).collect()
        merged: TableSketch | None = None
        for _partition, document in sorted(parts, key=lambda row: row[0]):
            part = TableSketch.from_json(document)
            merged = part if merged is None else merged.merge(part)
        if merged is None or merged.rows == 0:
            raise DataError(f"{source}: no rows", path=source)
        return merged, merged.rows

    def scan_manifest(self, where: Location, manifest: Manifest, timestamp: str | None) -> Scanned:
        """The manifest's files shared out among Spark's tasks, each read and scanned as
        in-process, the parts merged here (`keel.engines.spark_manifest`)."""
        from keel.engines.spark_manifest import scan_manifest

        return scan_manifest(self.master, self.conf, where, manifest, timestamp)


@contextmanager
def spark_job(job: str, source: str) -> Iterator[None]:
    """Runs a Spark job (`job` says what it does, `source` what it reads) with Spark's
    failures in keel's words: a source Spark cannot read or parse is a `DataError` naming it
    (as in-process, exit 2), any other failure of the job an `EngineError` (exit 10)."""
    from keel.errors import DataError, EngineError

    try:
        from py4j.protocol import Py4JError
        from pyspark.errors import AnalysisException, PySparkException
    except ImportError:
        raise _pyspark_missing() from None
    try:
        with _no_pandas_warning():
            yield
    except AnalysisException as exc:
        raise DataError(
            f"{source}: Spark cannot read it: {_first_line(exc)}", path=source
        ) from None
    except (PySparkException, Py4JError) as exc:
        reason = _reason(exc)
        if any(marker in reason for marker in _BAD_DATA):
            # The data, not the engine: the same file fails in-process too (exit 2).
            raise DataError(f"{source}: Spark cannot read it: {reason}", path=source) from None
        raise EngineError(
            f"the Spark job {job} failed: {reason}", engine="spark", hint=_hint(reason)
        ) from None


@contextmanager
def _no_pandas_warning() -> Iterator[None]:
    """pyspark warns that it does not fully support the installed pandas when a session
    starts and on any Arrow UDF; keel's work on Spark uses no pandas."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*does not yet fully support pandas", category=FutureWarning
        )
        yield


def by_position(frame: Any) -> tuple[Any, list[str]]:
    """`frame` with its columns renamed `c0`, `c1`, ... and their names: `mapInArrow` takes
    a dotted name (`inputs.distance`) for a struct's field and fails, so the columns cross
    it by position and get their names back in the partition's Arrow batches."""
    names = list(frame.columns)
    return frame.select(*(quoted(n).alias(f"c{i}") for i, n in enumerate(names))), names


def quoted(name: str) -> Any:
    """A column by its name, a dot or a space in it being part of the name."""
    from pyspark.sql.functions import col

    return col("`" + name.replace("`", "``") + "`")


def _paths(source: str) -> tuple[list[str], Literal["csv", "parquet"]]:
    """The paths Spark reads and their format; local sources listed as `keel.data` does."""
    from keel.data import resolve_source
    from keel.errors import DataError

    url = _URL.match(source)
    if url is not None and url["scheme"].lower() != "file":
        name = source.rstrip("/").rsplit("/", 1)[-1].lower()
        return [source], "csv" if name.endswith(_CSV_SUFFIXES) else "parquet"
    files = resolve_source(re.sub(r"^file:(//)?", "", source) if url is not None else source)
    formats = {path: _format_of(path) for path in files}
    if len(set(formats.values())) > 1:
        csv = next(p for p, f in formats.items() if f == "csv")
        parquet = next(p for p, f in formats.items() if f == "parquet")
        raise DataError(
            f"{source}: mixes CSV ({csv}) and Parquet ({parquet}) files; Spark reads one format",
            path=source,
        )
    # Absolute and with a scheme: a cluster whose default file system is HDFS still reads
    # the local files named.
    return [f"file://{path.resolve()}" for path in files], formats[files[0]]


def spark_paths(sources: Sequence[str], shown: str) -> tuple[list[str], Literal["csv", "parquet"]]:
    """The paths Spark reads for every source (each as `SparkEngine.sketch` reads one) and
    their one format: resolved before a session starts, so a missing file costs no JVM.
    `DataError` (naming `shown`) when they mix CSV and Parquet."""
    from keel.errors import DataError

    paths: list[str] = []
    formats: set[str] = set()
    for source in sources:
        found, file_format = _paths(source)
        paths += found
        formats.add(file_format)
    if len(formats) > 1:
        raise DataError(f"{shown}: mixes CSV and Parquet files; Spark reads one format", path=shown)
    return paths, "csv" if formats == {"csv"} else "parquet"


def _format_of(path: Path) -> Literal["csv", "parquet"]:
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith((".parquet", ".pq", ".parq")):
        return "parquet"
    with path.open("rb") as handle:
        return "parquet" if handle.read(4) == b"PAR1" else "csv"


def read_paths(session: Any, paths: list[str], file_format: Literal["csv", "parquet"]) -> Any:
    """`paths` (from `spark_paths`) as one DataFrame."""
    if file_format == "csv":
        return session.read.options(**_CSV_OPTIONS).csv(paths)
    return session.read.parquet(*paths)


def arrow_chunks(batches: Iterator[pa.RecordBatch], names: Sequence[str]) -> Iterator[pa.Table]:
    """A partition's Arrow batches (as `mapInArrow` hands them to a task, columns crossing
    by position: `by_position`) as tables of about `_CHUNK_BYTES` each, the columns named
    `names`: bounded memory per task whatever the partition's size, and few merges."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    chunk: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        chunk.append(batch)
        held += batch.nbytes
        if held >= _CHUNK_BYTES:
            yield pa.Table.from_batches(chunk).rename_columns(list(names))
            chunk, held = [], 0
    if chunk:
        yield pa.Table.from_batches(chunk).rename_columns(list(names))


def _sketch_partition(
    names: Sequence[str], batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """Runs on the executors: one partition's Arrow batches in (their columns named
    `names`), one row (its sketch) out."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    from pyspark import TaskContext

    from keel.faults import pause_point
    from keel.stats.sketch import TableSketch

    pause_point("engine.spark.partition")
    sketch: TableSketch | None = None
    for table in arrow_chunks(batches, names):
        part = TableSketch.of(table)
        sketch = part if sketch is None else sketch.merge(part)
    if sketch is None:
        return
    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    yield pa.RecordBatch.from_pydict(
        {"partition": [partition], "sketch": [sketch.to_json().decode("utf-8")]},
        schema=pa.schema([("partition", pa.int32()), ("sketch", pa.string())]),
    )


def _hint(reason: str) -> str:
    found = re.search(r"No module named '(\w+)", reason)
    if found is not None and found[1] in ("keel", "pyarrow", "numpy"):
        return (
            "the executors' Python lacks keel: install keelml on every node (or ship it with "
            "the job), or point spark.pyspark.python at an interpreter that has it; "
            "nothing was recorded"
        )
    return "nothing was recorded; see the Spark driver's log for the whole story, then run again"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _reason(exc: BaseException) -> str:
    """Spark's reason for a failed job in a line or two: what the stage failed of (the task's
    error, a lost executor) and, when it says more, the root cause."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            top = str(java.toString())
            root = java
            while root.getCause() is not None:
                root = root.getCause()
            cause = str(root.toString())
        except Exception:  # noqa: BLE001 - the JVM may be gone with the job: say what we have
            top, cause = str(exc), ""
    else:
        top, cause = str(exc), ""
    reason = _short(top)
    cause = _short(cause)
    if cause and cause not in reason:
        reason = f"{reason} (caused by {cause})"
    # A task's Python traceback ends with the exception it raised.
    raised = [
        line.strip()
        for line in str(exc).splitlines()
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b", line.strip())
    ]
    if raised and raised[-1] not in reason:
        reason = f"{reason.rstrip(':')}: {raised[-1]}"
    return reason if len(reason) <= 800 else reason[:797] + "..."


def _short(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0]
    # The JVM's class names say nothing to a user; Spark's own words follow them.
    return re.sub(r"^(?:[a-z]\w*\.)+[A-Z]\w*(?:Exception|Error): ", "", first)
