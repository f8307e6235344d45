"""Engines: where keel's data work runs, in this process or on Apache Spark.

    engine = engine_for(EngineSpec(kind="spark", master="local[2]"))
    sketch, rows = engine.sketch("s3a://lake/flights/", columns=["dep_delay", "carrier"])

An engine turns a data source (CSV or Parquet: a file, a glob, a folder, or on Spark an
`s3a://` or `hdfs://` path) into a `TableSketch`, keel's mergeable summary of its columns.
`LocalEngine` reads the source into this process with Arrow, as keel always has. `SparkEngine`
sketches each partition where it lives, inside `DataFrame.mapInArrow` (Arrow batches, no pandas),
and merges the partitions' sketches on the driver. A merge equals the sketch of the rows taken
together (keel.stats.sketch says where that holds exactly and where within a bound), so both
engines give the same answer for the same data; only the Spark one scales past one machine.

The verbs choose the engine (`engine_for`, from keel.yaml's `engine:` and `--engine`); the
services they call stay engine-agnostic. Only the pure core and `keel.data` are imported here,
and pyspark only when the Spark engine runs: keel without the `spark` extra is whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from keel.engines.local import LocalEngine

if TYPE_CHECKING:
    from keel.data.lake import Location
    from keel.data.scan import Scanned
    from keel.domain.dataset import Manifest
    from keel.spec import EngineSpec
    from keel.stats.sketch import TableSketch

__all__ = ["Engine", "LocalEngine", "engine_for"]


class Engine(Protocol):
    """What an engine does for the verbs."""

    @property
    def name(self) -> str:
        """`local` or `spark`, as `engine.kind` and `--engine` name it."""
        ...

    def sketch(self, source: str, columns: Sequence[str] | None = None) -> tuple[TableSketch, int]:
        """The sketch of `source` (only `columns`, when named) and its number of rows.

        `DataError` when the source cannot be read, `ConfigError` (field `columns`) for a
        named column it lacks, `EngineError` when the engine itself fails."""
        ...

    def scan_manifest(self, where: Location, manifest: Manifest, timestamp: str | None) -> Scanned:
        """What a manifest version of `where` records of the manifest's files (profile,
        schema, time range of the `timestamp` column), each file read as the manifest names
        it. `DataError` naming the first file that cannot be read or joined to the ones
        before, `EngineError` when the engine itself fails."""
        ...


def engine_for(spec: EngineSpec) -> Engine:
    """The engine keel.yaml's `engine:` section (or a command's `--engine`) asks for."""
    if spec.kind == "spark":
        from keel.engines.spark import SparkEngine

        return SparkEngine(spec.master, spec.spark_conf())
    return LocalEngine()
