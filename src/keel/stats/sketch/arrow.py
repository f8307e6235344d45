"""Reading Arrow columns: which kind a column is, its finite numbers, its value counts."""

from __future__ import annotations

from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

__all__ = ["ColumnKind", "column_kind", "count_integers", "finite_numbers", "value_counts"]


ColumnKind = Literal["numeric", "categorical", "boolean", "temporal"]
_KINDS: Final = ("numeric", "categorical", "boolean", "temporal")

Floats = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]


def column_kind(data_type: Any) -> ColumnKind | None:
    """The sketch kind of an Arrow type; None for types keel does not summarise (and `null`)."""
    if (
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    ):
        return "numeric"
    if (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_string_view(data_type)
        or pa.types.is_dictionary(data_type)
    ):
        return "categorical"
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_timestamp(data_type) or pa.types.is_date(data_type):
        return "temporal"
    return None


def finite_numbers(values: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int64 | np.float64]:
    """The column's values without nulls, NaN or infinities, as a read-only numpy array.

    Integers of up to 64 bits (except uint64) come back as int64, so that callers can count
    them without sorting; every other number type as float64.
    """
    data_type = values.type
    present = pc.drop_null(values) if values.null_count else values
    if pa.types.is_integer(data_type) and data_type != pa.uint64():
        ints: npt.NDArray[np.int64] = _to_numpy(present.cast(pa.int64()), np.int64)
        return ints
    # safe=False: int64 beyond 2**53 and decimals round to the nearest double, as intended.
    floats: Floats = _to_numpy(pc.cast(present, pa.float64(), safe=False), np.float64)
    finite = np.isfinite(floats)
    return floats if finite.all() else floats[finite]


def count_integers(numbers: npt.NDArray[Any]) -> tuple[Floats, Counts] | None:
    """Distinct values (ascending, as float64) and their counts, for integers spanning a range
    no wider than about four times their number: one bincount, no sort. None otherwise."""
    if numbers.dtype.kind not in "iu" or numbers.size == 0:
        return None
    low, high = int(numbers.min()), int(numbers.max())
    if high - low > 4 * numbers.size + 1024:
        return None
    counted = np.bincount((numbers - low).astype(np.intp, copy=False))
    present = np.flatnonzero(counted)
    return (present + low).astype(np.float64), counted[present].astype(np.int64)


def value_counts(values: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """Non-null value -> count, values as strings (booleans as "true"/"false")."""
    if pa.types.is_boolean(values.type):
        true = pc.sum(values.cast(pa.int64())).as_py() or 0
        false = len(values) - values.null_count - true
        return {k: v for k, v in (("false", false), ("true", true)) if v}
    counted = pc.value_counts(values)
    keys = counted.field("values").to_pylist()
    amounts = counted.field("counts").to_pylist()
    return {str(k): int(n) for k, n in zip(keys, amounts, strict=True) if k is not None}


def _to_numpy(values: pa.Array | pa.ChunkedArray, dtype: type[np.generic]) -> Any:
    """A null-free fixed-width Arrow array as numpy, without a copy where it is one chunk.

    Through the buffer rather than `to_numpy`, which imports pandas (seconds, and ~50 MB).
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if len(values) == 0:
        return np.zeros(0, dtype=dtype)
    width = np.dtype(dtype).itemsize
    return np.frombuffer(
        values.buffers()[1], dtype=dtype, count=len(values), offset=values.offset * width
    )
