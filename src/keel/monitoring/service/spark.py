"""Monitoring windows read on Spark: the compacted log where the artifact store keeps it.

The prediction log's Parquet segments of the windows asked for are read by Spark straight
from the artifact store (its local folder, or its S3 prefix as `s3a://`). In `mapInArrow`,
each partition sums its rows up per window (`_part_state`, as in-process: sketch, counts,
versions, time span, out-of-range and unseen counts) and keeps the ids, scores and
predictions of rows whose labels have arrived (their ids broadcast from the metadata store).
The driver adds the rows not compacted yet (at most about an hour's, in the metadata store) in
this process, as `_read_windows` does, and merges the partitions' parts into the same windows.
So both engines build the same window states from the same pure functions; judging and
recording do not know which engine ran.

Row-count windows number the rows in the log's order across segments and partitions, which
Spark's partitions do not keep: on Spark they are refused, not approximated.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Container, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from keel.errors import ConfigError
from keel.monitoring.service.plan import WindowPlan
from keel.monitoring.service.reading import (
    Limits,
    _absorb,
    _add_labelled,
    _add_table,
    _labelled,
    _limits,
    _new_state,
    _newest,
    _part_state,
    _PartState,
    _read_range,
    _slices,
    _wanted,
    _window_keys,
    _WindowState,
)

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.domain.prediction import PredictionSegment
    from keel.models.reference import Reference
    from keel.spec import EngineSpec
    from keel.workspace import Workspace

__all__: list[str] = []

_OUTPUT_SCHEMA: Final = "partition int, key long, state string"


def _read_windows_on_spark(
    project: Workspace,
    engine: EngineSpec,
    model: str,
    reference: Reference,
    columns: Sequence[str],
    plan: WindowPlan,
    count: int,
    since: datetime | None,
    oldest: datetime,
    newest: datetime,
) -> list[_WindowState]:
    if plan.rows is not None:
        rule = (
            "row-count windows need the log's order, which Spark's partitions do not keep: "
            "use a duration (1h, 1d) on Spark, or --engine local"
        )
        raise ConfigError(f"--window {plan.rows}: {rule}", problems=[("--window", rule)])
    read_from, event_column = _read_range(project, plan, count, since, oldest, newest)
    stop = newest + timedelta(microseconds=1)
    wanted = _wanted(columns, event_column)
    states: dict[int, _WindowState] = {}
    segments = project.metadata.predictions.segments(model=model, start=read_from, end=stop)
    # The rows not compacted yet, in this process, right after listing the segments (before
    # the Spark job, however long it runs): a row compacted meanwhile would be in neither.
    for table in _slices(project, model, read_from, newest, plan, wanted, segments=False):
        _add_table(project, states, table, plan, event_column, 0, reference, columns)
    if segments:
        labels = {
            row.prediction_id: row.label
            for row in project.metadata.feedback.window(model, read_from, stop)
        }
        for key, part, labelled in _on_spark(
            project,
            engine,
            model,
            segments,
            wanted,
            read_from,
            stop,
            plan,
            event_column,
            _limits(reference, columns),
            labels,
        ):
            state = states.get(key)
            if state is None:
                state = states[key] = _new_state(key, plan, part.first_at)
            _absorb(state, part, by_rows=False)
            if labelled is not None and labelled[0]:
                _add_labelled(state, *labelled, labels)
    return _newest(states, plan, count, since)


def _on_spark(
    project: Workspace,
    engine: EngineSpec,
    model: str,
    segments: Sequence[PredictionSegment],
    wanted: Sequence[str],
    start: datetime,
    stop: datetime,
    plan: WindowPlan,
    event_column: str | None,
    limits: Limits,
    labels: Collection[str],
) -> Iterator[tuple[int, _PartState, tuple[list[str], Any, Any] | None]]:
    """Each window's partial state from each Spark partition, in partition order."""
    from keel.engines.spark import by_position, quoted, spark_job, spark_session

    paths = [_location(project, segment) for segment in segments]
    source = f"{model}'s prediction log ({len(paths)} segments)"
    session = spark_session(engine.master, engine.spark_conf())
    with spark_job(f"monitoring {source}", source):
        from pyspark.sql.functions import lit

        # Versions with other inputs have other columns: one schema of them all.
        frame = session.read.option("mergeSchema", "true").parquet(*paths)
        frame = frame.where((quoted("at") >= lit(start)) & (quoted("at") < lit(stop)))
        frame = frame.select(*(quoted(name) for name in wanted if name in frame.columns))
        # Every monitored column's name has a dot (`inputs.distance`).
        frame, names = by_position(frame)
        ids = session.sparkContext.broadcast(frozenset(labels))
        sketcher = _partition_states(names, plan, event_column, limits, ids)
        rows = frame.mapInArrow(sketcher, _OUTPUT_SCHEMA).collect()
    for _partition, key, document in sorted(rows, key=lambda row: (row[0], row[1])):
        found = json.loads(document)
        labelled = found["labelled"]
        yield (
            int(key),
            _PartState.from_dict(found["state"]),
            None if labelled is None else _from_labelled(labelled),
        )


def _location(project: Workspace, segment: PredictionSegment) -> str:
    """Where Spark reads a segment: the artifact store's own file or object."""
    from keel.artifacts.local import LocalArtifactStore
    from keel.artifacts.s3 import S3ArtifactStore

    store = project.artifacts
    if isinstance(store, LocalArtifactStore):
        return f"file://{store.path_of(segment.digest)}"
    if isinstance(store, S3ArtifactStore):
        # Spark's S3 file system (hadoop-aws) answers to s3a://.
        return f"s3a://{store.bucket}/{store.key_of(segment.digest)}"
    rule = f"Spark reads prediction segments from a local or S3 artifact store, not {store!r}"
    raise ConfigError(rule, problems=[("KEEL_ARTIFACTS", rule)])


def _partition_states(
    names: Sequence[str], plan: WindowPlan, event_column: str | None, limits: Limits, ids: Any
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return _window_partition(batches, names, plan, event_column, limits, ids.value)

    return run


def _window_partition(
    batches: Iterator[pa.RecordBatch],
    names: Sequence[str],
    plan: WindowPlan,
    event_column: str | None,
    limits: Limits,
    labelled: Container[str],
) -> Iterator[pa.RecordBatch]:
    """Runs on the executors: one partition's Arrow batches in, a row per window out (its
    partial state and its labelled rows, as JSON)."""
    import numpy as np
    import pyarrow as pa
    from pyspark import TaskContext

    from keel.engines.spark import arrow_chunks
    from keel.faults import pause_point

    pause_point("engine.spark.partition")
    states: dict[int, _PartState] = {}
    found: dict[int, list[tuple[list[str], Any, Any]]] = {}
    # Batches gathered into bounded chunks: a sketch and a merge per chunk and window, not
    # per batch of 10,000 rows.
    for table in arrow_chunks(batches, names):
        if not table.num_rows:
            continue
        keys = _window_keys(table, plan, event_column, 0)
        for key in np.unique(keys).tolist():
            part = table.filter(pa.array(keys == key))
            state = _part_state(part, limits)
            states[key] = state if key not in states else states[key].merge(state)
            hits = _labelled(part, labelled)
            if hits is not None and hits[0]:
                found.setdefault(key, []).append(hits)
    if not states:
        return
    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    keys_out = sorted(states)
    documents = [
        json.dumps({"state": states[key].to_dict(), "labelled": _to_labelled(found.get(key))})
        for key in keys_out
    ]
    yield pa.RecordBatch.from_pydict(
        {"partition": [partition] * len(keys_out), "key": keys_out, "state": documents},
        schema=pa.schema([("partition", pa.int32()), ("key", pa.int64()), ("state", pa.string())]),
    )


def _to_labelled(hits: list[tuple[list[str], Any, Any]] | None) -> dict[str, Any] | None:
    import numpy as np

    if not hits:
        return None
    return {
        "ids": [i for ids, _, _ in hits for i in ids],
        # NaN (no probability logged) survives JSON as Python writes it.
        "scores": [float(v) for _, scores, _ in hits for v in np.asarray(scores, "float64")],
        "predictions": [v for _, _, predicted in hits for v in _plain(predicted)],
    }


def _plain(values: Any) -> list[Any]:
    import numpy as np

    plain: list[Any] = np.asarray(values).tolist()
    return plain


def _from_labelled(document: dict[str, Any]) -> tuple[list[str], Any, Any]:
    import numpy as np
    import pyarrow as pa

    # Through Arrow, as the in-process path reads them: the same numpy kinds (object for
    # text, floats with NaN for missing numbers).
    predictions = pa.array(document["predictions"]).to_numpy(zero_copy_only=False)
    return list(document["ids"]), np.asarray(document["scores"], "float64"), predictions
