"""Infer a contract from reference data: a first draft that a team reviews, edits and commits.

What is inferred, and how loose it is:
- types: Arrow's types mapped to the contract's logical types;
- nulls: a column without nulls is `nullable: false` (a null later is a new null pattern); one
  with nulls gets `null_rate.max` = observed rate + `tolerance` (absolute, 0.02 = 2 points);
- ranges: numeric min and max widened by `margin` times the observed span on each side, never
  below zero for a column that had no negative value (counts, distances, durations);
- domains: every value of a string or integer column with at most `max_categories` distinct
  values, each seen twice on average (so a small sample of unique values is not a "category");
- key: the given columns (which must be unique in the reference), else a column that is
  obviously unique: no nulls, all values distinct, named like an id or with 1,000+ rows;
- timestamp: the given column, else a timestamp column (names like `time`, `date`, `ts`,
  `..._at` first, then dates); its freshness = `freshness_factor` times the typical gap between
  consecutive distinct timestamps, at least `freshness_floor`;
- rows: the observed count times 1 -/+ `row_margin`.

Column names follow `keel.contracts.columns`: a row index pandas wrote is no part of the
contract (it would otherwise be taken for the key), and a column with an empty or blank name is
refused. `keel.data.read_data` already leaves such an index out, and reports it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from importlib import metadata
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.contracts import _arrow
from keel.contracts.columns import split_index_columns
from keel.contracts.model import (
    LOGICAL_TYPES,
    ColumnContract,
    Contract,
    ContractMetadata,
    DomainValue,
    NumericRange,
    RowBounds,
    TimestampRule,
)
from keel.errors import ConfigError

__all__ = ["infer_contract"]

_TIME_NAME = re.compile(r"time|date|timestamp|(^|_)ts($|_)|_at$", re.IGNORECASE)
_ID_NAME = re.compile(r"(^|_)(id|uuid|key)$", re.IGNORECASE)
#: Rows from which an all-distinct column is taken for a key even without an id-like name.
_UNIQUE_MIN_ROWS = 1_000
#: Null-rate bounds are written with this many decimals (rounded up, so never tighter).
_RATE_DECIMALS = 4


def infer_contract(
    table: pa.Table,
    *,
    timestamp: str | None = None,
    key: Sequence[str] | None = None,
    tolerance: float = 0.02,
    margin: float = 0.1,
    row_margin: float = 0.5,
    max_categories: int = 30,
    freshness: timedelta | None = None,
    freshness_factor: float = 3.0,
    freshness_floor: timedelta = timedelta(hours=36),
    source: str | None = None,
    inferred_at: datetime | None = None,
) -> Contract:
    """Infer the contract `table` satisfies, loosened by the given tolerances.

    The reference always passes its own contract (a property the tests hold). Raises
    ConfigError, naming the option, for an unknown or unusable `timestamp` or `key` column,
    a key that is not unique in the reference, negative tolerances, an empty table, or a
    column type a contract cannot describe.
    """
    _check_options(tolerance, margin, row_margin, max_categories, freshness_factor)
    rows = table.num_rows
    if rows == 0:
        raise ConfigError(
            "cannot infer a contract from a table with no rows",
            problems=[("data", "has no rows")],
        )
    table, _ = split_index_columns(table, source or "data")
    key_columns = _resolve_key(table, key)
    timestamp_column = _resolve_timestamp(table, timestamp)

    columns: list[ColumnContract] = []
    distinct: dict[str, int] = {}
    for name in table.column_names:
        values = _arrow.column(table, name)
        column, count = _infer_column(name, values, rows, tolerance, margin, max_categories)
        columns.append(column)
        if count is not None:
            distinct[name] = count
    if key is None:
        key_columns = _obvious_key(table, columns, distinct)

    rule = None
    if timestamp_column is None and freshness is not None:
        raise ConfigError(
            "a freshness was given but the data has no timestamp or date column",
            problems=[("freshness", "no timestamp column to apply it to")],
            hint="name the column with `timestamp=`, or leave freshness out",
        )
    if timestamp_column is not None:
        if freshness is None:
            freshness = _freshness(table, timestamp_column, freshness_factor, freshness_floor)
        rule = TimestampRule(timestamp_column, freshness)

    return Contract(
        columns=tuple(columns),
        key=key_columns,
        timestamp=rule,
        rows=RowBounds(
            max(0, math.floor(rows * (1 - row_margin))), math.ceil(rows * (1 + row_margin))
        ),
        metadata=ContractMetadata(
            inferred_from=source, inferred_at=inferred_at, keel_version=_keel_version()
        ),
    )


def _check_options(
    tolerance: float, margin: float, row_margin: float, max_categories: int, factor: float
) -> None:
    problems = [
        (option, f"must be zero or more, got {value}")
        for option, value in (
            ("tolerance", tolerance),
            ("margin", margin),
            ("row_margin", row_margin),
            ("max_categories", max_categories),
            ("freshness_factor", factor),
        )
        if not value >= 0  # `not >=` also rejects NaN
    ]
    if problems:
        raise ConfigError(
            "invalid inference options: " + "; ".join(f"{k}: {r}" for k, r in problems),
            problems=problems,
        )


def _infer_column(
    name: str,
    values: Any,
    rows: int,
    tolerance: float,
    margin: float,
    max_categories: int,
) -> tuple[ColumnContract, int | None]:
    """The column's contract, and its distinct count when it was computed (for key detection)."""
    kind = _arrow.logical_type(values.type)
    if kind is None:
        # Only nulls in the reference: nothing says what the values will be; strings are the
        # loosest honest guess, and reviewers will see `null_rate: {max: 1.0}`.
        return ColumnContract(name, "string", nullable=True, max_null_rate=1.0), None
    if not _arrow.is_logical(kind):
        raise ConfigError(
            f"column '{name}' has type {kind}, which a contract cannot describe "
            f"(supported: {', '.join(LOGICAL_TYPES)})",
            problems=[(f"columns.{name}", f"unsupported type {kind}")],
            hint="drop or convert the column before inferring",
        )
    logical = _arrow.as_logical(kind)
    nulls: int = values.null_count
    max_null_rate = None
    if nulls:
        max_null_rate = _ceil(min(1.0, nulls / rows + tolerance), _RATE_DECIMALS)

    value_range = None
    if logical in ("integer", "float") and nulls < rows:
        extremes = pc.min_max(values)
        low, high = _arrow.scalar(extremes["min"]), _arrow.scalar(extremes["max"])
        if low is not None and high is not None:
            value_range = _widen(low, high, margin, integer=logical == "integer")

    domain: tuple[DomainValue, ...] | None = None
    distinct = None
    if logical in ("string", "integer"):
        uniques = pc.unique(values).drop_null()
        distinct = len(uniques)
        if 0 < distinct <= max_categories and 2 * distinct <= rows - nulls:
            domain = tuple(sorted(uniques.to_pylist()))

    column = ColumnContract(
        name,
        logical,
        nullable=nulls > 0,
        max_null_rate=max_null_rate,
        range=value_range,
        domain=domain,
    )
    return column, distinct


def _widen(low: Any, high: Any, margin: float, *, integer: bool) -> NumericRange:
    span = high - low
    # inf * 0 is nan: a float span that overflowed must not poison the bounds.
    pad = span * margin if margin else 0
    new_low, new_high = low - pad, high + pad
    if low >= 0:
        new_low = max(new_low, 0)
    if integer:
        return NumericRange(math.floor(new_low), math.ceil(new_high))
    low_f, high_f = float(new_low), float(new_high)
    if span > 0 and math.isfinite(span):
        # Round outwards to about four significant digits of the span: readable in review.
        decimals = 3 - math.floor(math.log10(span))
        low_f = _floor(low_f, decimals)
        high_f = _ceil(high_f, decimals)
    return NumericRange(low_f, high_f)


def _floor(value: float, decimals: int) -> float:
    rounded = _rounded(value, decimals, math.floor)
    # Float error can nudge a rounded value inwards: never tighter than the data.
    return rounded if rounded <= value else value


def _ceil(value: float, decimals: int) -> float:
    rounded = _rounded(value, decimals, math.ceil)
    return rounded if rounded >= value else value


def _rounded(value: float, decimals: int, direction: Callable[[float], int]) -> float:
    if not -300 < decimals < 300:
        return value  # spans near the limits of float: keep the exact value
    scale = 10.0**decimals
    scaled = value * scale
    if not math.isfinite(scaled):
        return value
    return round(direction(scaled) / scale, max(decimals, 0))


def _resolve_key(table: pa.Table, key: Sequence[str] | None) -> tuple[str, ...]:
    if key is None:
        return ()
    if isinstance(key, str):
        key = [key]
    missing = [name for name in key if name not in table.column_names]
    if missing:
        raise ConfigError(
            f"key column '{missing[0]}' is not in the data "
            f"(columns: {', '.join(table.column_names)})",
            problems=[("key", f"unknown column '{name}'") for name in missing],
        )
    columns = tuple(dict.fromkeys(key))
    duplicates = (
        _arrow.count_rows(_arrow.repeated_keys(table, columns))
        if _arrow.duplicate_count(table, columns)
        else 0
    )
    if duplicates:
        raise ConfigError(
            f"key ({', '.join(columns)}) is not unique in the reference data: "
            f"{duplicates} rows share their key with another row",
            problems=[("key", f"{duplicates} rows with a duplicate key")],
            hint="choose columns that identify a row, or leave the key out",
        )
    return columns


def _obvious_key(
    table: pa.Table, columns: list[ColumnContract], distinct: dict[str, int]
) -> tuple[str, ...]:
    unique = [
        column.name
        for column in columns
        if not column.nullable
        and distinct.get(column.name) == table.num_rows
        and table.num_rows >= 2
        and (_ID_NAME.search(column.name) or table.num_rows >= _UNIQUE_MIN_ROWS)
    ]
    if not unique:
        return ()
    named = [name for name in unique if _ID_NAME.search(name)]
    return ((named or unique)[0],)


def _resolve_timestamp(table: pa.Table, timestamp: str | None) -> str | None:
    kinds = {
        name: _arrow.logical_type(table.schema.field(name).type) for name in table.column_names
    }
    if timestamp is not None:
        if timestamp not in kinds:
            raise ConfigError(
                f"timestamp column '{timestamp}' is not in the data "
                f"(columns: {', '.join(table.column_names)})",
                problems=[("timestamp", f"unknown column '{timestamp}'")],
            )
        if kinds[timestamp] not in ("timestamp", "date"):
            raise ConfigError(
                f"timestamp column '{timestamp}' holds {kinds[timestamp] or 'only nulls'}, "
                "not timestamps or dates",
                problems=[("timestamp", f"column '{timestamp}' is not a timestamp")],
                hint="write its values as ISO-8601 (2013-01-01T05:00:00Z), or pick another column",
            )
        return timestamp
    candidates = [
        (kind != "timestamp", not _TIME_NAME.search(name), position, name)
        for position, (name, kind) in enumerate(kinds.items())
        if kind in ("timestamp", "date") and table.column(name).null_count < table.num_rows
    ]
    return min(candidates)[3] if candidates else None


def _freshness(table: pa.Table, name: str, factor: float, floor: timedelta) -> timedelta:
    values = table.column(name)
    unit = _arrow.seconds_per_unit(values.type)
    instants = pc.unique(values).drop_null()
    if len(instants) < 2:
        return floor
    as_int = _arrow.as_int64(instants)
    ordered = as_int.take(pc.sort_indices(as_int))
    gaps = pc.subtract(ordered.slice(1), ordered.slice(0, len(ordered) - 1))
    typical = pc.quantile(gaps, q=0.5, interpolation="lower")[0].as_py()
    seconds = max(floor.total_seconds(), float(typical) * unit * factor)
    # Whole minutes, and whole hours past two hours: a bound people read, not 3h7m12.4s.
    step = 3600 if seconds > 7200 else 60
    return timedelta(seconds=math.ceil(seconds / step) * step)


def _keel_version() -> str | None:
    try:
        return metadata.version("keelml")
    except metadata.PackageNotFoundError:
        return None
