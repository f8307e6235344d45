"""What a snapshot makes of a table before recording it: its time column typed, Parquet's types.

Both a copy and a manifest version record the table as `load_table` will return it, so the
recorded schema, time range and profile describe what is read back.
"""

from __future__ import annotations

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

from keel.domain import times
from keel.domain.dataset import TimeRange
from keel.errors import DataError

__all__ = ["as_stored", "typed_timestamps"]


def as_stored(table: pa.Table) -> pa.Table:
    """The table with the types Parquet gives back, so that the recorded schema and profile
    describe what `load_table` returns: e.g. Parquet has no second-resolution timestamps, so
    timestamp[s] comes back as timestamp[ms] (the same values)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table.slice(0, 0), sink)
    stored = pq.read_schema(pa.BufferReader(sink.getvalue()))
    types = pa.schema([pa.field(f.name, f.type) for f in stored])
    if types == pa.schema([pa.field(f.name, f.type) for f in table.schema]):
        return table
    return table.cast(types)


def typed_timestamps(
    table: pa.Table, column: str | None, source: str
) -> tuple[pa.Table, TimeRange | None]:
    """The table with its timestamp column typed, and that column's time range."""
    if column is None:
        return table, None
    if column not in table.column_names:
        raise DataError(
            f"{source}: the timestamp column '{column}' (data.timestamp in keel.yaml) is not "
            f"in the data; its columns are {', '.join(table.column_names)}",
            path=source,
        )
    values = table.column(column)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        # Databases without a timestamp type (SQLite) hand back ISO-8601 text.
        values = _parse_timestamps(values, column, source)
        table = table.set_column(table.column_names.index(column), column, values)
    elif not times.is_temporal(values.type):
        raise DataError(
            f"{source}: the timestamp column '{column}' holds {values.type}, "
            "expected timestamps or dates",
            path=source,
        )
    if values.null_count == len(values):
        return table, None
    bounds = pc.min_max(times.to_utc(values))
    start, end = (times.as_utc(bounds[key].as_py()) for key in ("min", "max"))
    return table, TimeRange(column, start, end)


def _parse_timestamps(values: pa.ChunkedArray, column: str, source: str) -> pa.ChunkedArray:
    # Dates alone (YYYY-MM-DD) stay dates, as a CSV reader types them.
    for target in (pa.date32(), pa.timestamp("us", "UTC"), pa.timestamp("us")):
        try:
            return values.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    try:
        # Text mixing offsets and none, or dates and timestamps: each value on its own.
        parsed: pa.ChunkedArray = times.to_utc(values)
    except times.NotATime as exc:
        raise DataError(
            f"{source}: the timestamp column '{column}' {exc}",
            path=source,
            hint="convert the column to a timestamp type, or fix the values that do not parse",
        ) from None
    return parsed
