"""Typed doorways into pyarrow, which ships without type stubs.

Everything Arrow hands back is `Any` to mypy; these helpers give the rest of the package typed
values, and hold the few Arrow quirks in one place (dictionary columns, nanosecond timestamps).
"""

from __future__ import annotations

import array
from datetime import date, datetime
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.contracts.model import LOGICAL_TYPES, LogicalType
from keel.domain import times

__all__ = [
    "COUNT",
    "POSITIONS",
    "as_int64",
    "as_logical",
    "as_utc",
    "column",
    "count_rows",
    "count_true",
    "duplicate_count",
    "first_indices",
    "is_logical",
    "logical_type",
    "positions",
    "repeated_keys",
    "rows_at",
    "scalar",
    "seconds_per_unit",
]

#: Column names of `repeated_keys`, chosen not to collide with the key's own columns.
COUNT = "__keel_count"
POSITIONS = "__keel_positions"

_UNIT_SECONDS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def logical_type(data_type: Any) -> str | None:
    """The contract type of an Arrow type: one of LOGICAL_TYPES, None for an all-null column,
    or Arrow's own name for a type a contract cannot describe (binary, list, struct, ...)."""
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    if pa.types.is_null(data_type):
        return None
    if pa.types.is_integer(data_type):
        return "integer"
    if pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "float"
    if (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_string_view(data_type)
    ):
        return "string"
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    if pa.types.is_date(data_type):
        return "date"
    return str(data_type)


def is_logical(name: str | None) -> bool:
    return name in LOGICAL_TYPES


def as_logical(name: str) -> LogicalType:
    for logical in LOGICAL_TYPES:
        if logical == name:
            return logical
    raise ValueError(name)


def column(table: Any, name: str) -> Any:
    """A column, dictionary-decoded: statistics and membership want the values themselves."""
    values = table.column(name)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return values


def scalar(value: Any) -> Any:
    """A Python value of an Arrow scalar (nanosecond timestamps as microsecond datetimes)."""
    if pa.types.is_timestamp(value.type) and value.type.unit == "ns":
        value = value.cast(pa.timestamp("us", value.type.tz), safe=False)
    return value.as_py()


def count_true(mask: Any) -> int:
    total = pc.sum(mask).as_py()
    return int(total) if total is not None else 0


def first_indices(mask: Any, limit: int) -> Any:
    """Row positions of the first `limit` true values of a boolean mask."""
    return pc.indices_nonzero(mask).slice(0, limit)


def rows_at(table: Any, indices: Any) -> list[dict[str, Any]]:
    """Rows as plain dicts; nanosecond timestamps become datetimes, not pandas objects."""
    # One zero-copy slice per row: `take` on a many-chunk table costs ~2 ms per call.
    where = [int(i) for i in indices.to_pylist()]
    if not where:
        return []
    rows = pa.concat_tables([table.slice(i, 1) for i in where])
    for position, field in enumerate(rows.schema):
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns":
            micro = rows.column(position).cast(pa.timestamp("us", field.type.tz), safe=False)
            rows = rows.set_column(position, field.name, micro)
    result: list[dict[str, Any]] = rows.to_pylist()
    return result


def as_utc(value: datetime | date) -> datetime:
    """Naive timestamps are taken as UTC, dates as their midnight in UTC (`keel.domain.times`)."""
    return times.as_utc(value)


def seconds_per_unit(data_type: Any) -> float:
    """How many seconds one step of a timestamp or date column's integer form is."""
    if pa.types.is_timestamp(data_type):
        return 1 / _UNIT_SECONDS[data_type.unit]
    if pa.types.is_date32(data_type):
        return 86_400.0
    # date64 counts milliseconds.
    return 0.001


def duplicate_count(table: Any, key: tuple[str, ...]) -> int:
    """How many rows repeat an earlier row's key (0 when the key is unique).

    Fast path: when the key columns' value ranges multiply to less than 2**62, each row's key
    packs into one int64 (mixed radix over integer offsets and dictionary codes); sorting that
    one column and comparing neighbours is several times faster than grouping by the columns.
    """
    packed = _pack(table, key)
    if packed is None:
        distinct = table.select(list(key)).group_by(list(key)).aggregate([]).num_rows
        return int(table.num_rows - distinct)
    if len(packed) < 2:
        return 0
    ordered = packed.take(pc.array_sort_indices(packed))
    return count_true(pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1)))


def as_int64(values: Any) -> Any:
    """Integers, timestamps and dates as int64 (dates in days: no direct date32 cast exists)."""
    if values.type == pa.int64():
        return values
    if pa.types.is_date32(values.type):
        values = values.cast(pa.int32())
    return values.cast(pa.int64())


def _pack(table: Any, key: tuple[str, ...]) -> Any:
    packed: Any = None
    capacity = 1
    for name in key:
        values = column(table, name)
        if pa.types.is_null(values.type):
            values = values.cast(pa.int64())
        if pa.types.is_integer(values.type) or pa.types.is_temporal(values.type):
            try:
                numbers = as_int64(values)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return None  # uint64 beyond int64, or no cast: group_by handles it
            extremes = pc.min_max(numbers)
            low, high = extremes["min"].as_py(), extremes["max"].as_py()
            low, size = (0, 1) if low is None else (low, high - low + 1)
            codes = pc.subtract(numbers, low) if low else numbers
        else:
            # Codes from one value set, so that they agree across the column's chunks.
            distinct = pc.unique(values)
            codes, size = pc.index_in(values, value_set=distinct).cast(pa.int64()), len(distinct)
        if codes.null_count:
            # One more code for null, so that a null is a value of its own, as in group_by.
            codes = codes.fill_null(size)
            size += 1
        capacity *= max(size, 1)
        if capacity >= 2**62:
            return None
        packed = codes if packed is None else pc.add(pc.multiply(packed, size), codes)
    return packed.combine_chunks() if isinstance(packed, pa.ChunkedArray) else packed


def repeated_keys(table: Any, key: tuple[str, ...]) -> Any:
    """The key values found on more than one row, in order of first appearance, with
    COUNT (how many rows) and POSITIONS (which rows)."""
    row = "__keel_position"
    keyed = table.select(list(key)).append_column(row, positions(table.num_rows))
    # One thread keeps groups in order of first appearance: the same report on every run.
    groups = keyed.group_by(list(key), use_threads=False).aggregate(
        [(row, "list"), ([], "count_all")]
    )
    groups = groups.rename_columns([*key, POSITIONS, COUNT])
    return groups.filter(pc.greater(groups[COUNT], 1))


def positions(count: int) -> Any:
    """0, 1, ..., count - 1 as an int64 array, built without a Python object per value."""
    values = array.array("q", range(count))
    return pa.Array.from_buffers(pa.int64(), count, [None, pa.py_buffer(values)])


def count_rows(repeated: Any) -> int:
    """How many rows share their key with another row, from `repeated_keys`."""
    if repeated.num_rows == 0:
        return 0
    return int(pc.sum(repeated[COUNT]).as_py())
