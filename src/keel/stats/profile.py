"""Statistics profiles of Arrow tables: what a dataset version, a model's reference data or a
window of predictions looks like, column by column.

    profile = profile_table(table)
    profile.column("distance").numeric.max        # 4983.0
    document = profile.to_dict()                   # {"kind": "keel/profile", "version": 1, ...}

Per column: Arrow type, count of values, nulls (and their rate); numbers: min, max, mean,
standard deviation, quantiles and a histogram with explicit bin edges; strings: distinct count
and the 20 most frequent values; booleans: true and false counts; timestamps and dates: the
oldest and newest value.

Counts are kept, not only rates, and the moments are stored as (count, mean, population std),
so that a later version can merge two profiles exactly (Chan et al.'s pairwise update) and bin
new data on the stored edges. Quantiles and distinct counts are exact for one table; merging
them will need sketches, which the version tag leaves room for.

Pure: pyarrow.compute only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.serial import dump, load

__all__ = [
    "HISTOGRAM_BINS",
    "PROFILE_KIND",
    "PROFILE_VERSION",
    "QUANTILES",
    "TOP_K",
    "BooleanSummary",
    "CategoricalSummary",
    "ColumnKind",
    "ColumnProfile",
    "Histogram",
    "NumericSummary",
    "Profile",
    "TemporalSummary",
    "profile_table",
]

PROFILE_KIND: Final = "keel/profile"
PROFILE_VERSION: Final = 1
#: Quantile name -> probability. Names are stable keys of the stored document.
QUANTILES: Final[Mapping[str, float]] = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.50,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}
HISTOGRAM_BINS: Final = 20
TOP_K: Final = 20

ColumnKind = Literal["numeric", "string", "boolean", "temporal", "other"]


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts of values in bins `[edges[i], edges[i+1])`; the last bin includes its right edge.

    Integer columns spanning at most `HISTOGRAM_BINS` values get one bin per integer, so the
    counts are exact per value; anything else gets equal-width bins from min to max.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.counts) + 1:
            raise ValueError(f"{len(self.counts)} bins need {len(self.counts) + 1} edges")


@dataclass(frozen=True, slots=True)
class NumericSummary:
    """Statistics of the finite values of a number column.

    `count` is the number of finite values the statistics describe; `non_finite` counts NaN
    and infinities (floats only), which are left out of every other figure.
    """

    count: int
    non_finite: int
    min: float
    max: float
    mean: float
    std: float  # population (ddof=0): with count and mean it merges exactly
    quantiles: dict[str, float]
    histogram: Histogram


@dataclass(frozen=True, slots=True)
class CategoricalSummary:
    """`distinct` values, and the `TOP_K` most frequent with their counts (ties by value)."""

    distinct: int
    top: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class BooleanSummary:
    true: int
    false: int


@dataclass(frozen=True, slots=True)
class TemporalSummary:
    """Oldest and newest value, ISO-8601 (timestamps to the microsecond, with their zone)."""

    min: str
    max: str


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """One column. `count` is its non-null values; `count + nulls` is the table's rows."""

    name: str
    type: str
    kind: ColumnKind
    count: int
    nulls: int
    numeric: NumericSummary | None = None
    categorical: CategoricalSummary | None = None
    boolean: BooleanSummary | None = None
    temporal: TemporalSummary | None = None

    @property
    def null_rate(self) -> float:
        total = self.count + self.nulls
        return self.nulls / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        # Summaries a column's kind has no use for are left out, not written as null; the null
        # rate is derived, written for readers of the raw document.
        return dump(self, exclude_none=True, after={"nulls": {"null_rate": self.null_rate}})

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> ColumnProfile:
        """Read `to_dict`'s document; `ValueError` naming each malformed field."""
        return load(cls, document, where=f"column {document.get('name')!r}")


@dataclass(frozen=True, slots=True)
class Profile:
    """A table's profile: its row count and one `ColumnProfile` per column, in table order."""

    rows: int
    columns: tuple[ColumnProfile, ...] = field(default=())

    def column(self, name: str) -> ColumnProfile:
        """The named column's profile; `KeyError` if the table had no such column."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": PROFILE_KIND,
            "version": PROFILE_VERSION,
            "rows": self.rows,
            "quantiles": dict(QUANTILES),
            "top_k": TOP_K,
            "columns": [column.to_dict() for column in self.columns],
        }

    def to_json(self) -> bytes:
        """Canonical JSON (sorted keys, no spaces): the same profile is always the same bytes."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Profile:
        """Read a stored profile; `ValueError` for another kind or a version this keel lacks."""
        if document.get("kind") != PROFILE_KIND:
            raise ValueError(f"not a keel profile: kind is {document.get('kind')!r}")
        if document.get("version") != PROFILE_VERSION:
            raise ValueError(
                f"this keel reads profile version {PROFILE_VERSION}, "
                f"got {document.get('version')!r}; upgrade keelml"
            )
        return load(cls, document, where="profile")

    @classmethod
    def from_json(cls, data: bytes | str) -> Profile:
        try:
            document = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a keel profile: invalid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ValueError("not a keel profile: expected a JSON object")
        return cls.from_dict(document)


def profile_table(table: pa.Table) -> Profile:
    """Profile every column of `table`."""
    return Profile(
        rows=table.num_rows,
        columns=tuple(
            _profile_column(field.name, table.column(index))
            for index, field in enumerate(table.schema)
        ),
    )


# --- one column ----------------------------------------------------------------------------


def _profile_column(name: str, values: pa.ChunkedArray) -> ColumnProfile:
    type_name = str(values.type)
    if pa.types.is_dictionary(values.type):
        # Statistics are about the values, not the codes that stand for them.
        values = values.cast(values.type.value_type)
    data_type = values.type
    nulls = int(values.null_count)
    count = len(values) - nulls
    column = ColumnProfile(name=name, type=type_name, kind="other", count=count, nulls=nulls)
    if _is_numeric(data_type):
        return replace(column, kind="numeric", numeric=_numeric(values, data_type))
    if _is_string(data_type):
        return replace(column, kind="string", categorical=_categorical(values, count))
    if pa.types.is_boolean(data_type):
        true = _int(pc.sum(values.cast(pa.int64())))
        return replace(column, kind="boolean", boolean=BooleanSummary(true, count - true))
    if pa.types.is_timestamp(data_type) or pa.types.is_date(data_type):
        return replace(column, kind="temporal", temporal=_temporal(values, count))
    return column


def _is_numeric(data_type: Any) -> bool:
    return bool(
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    )


def _is_string(data_type: Any) -> bool:
    return bool(
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_string_view(data_type)
    )


def _int(scalar: Any) -> int:
    value = scalar.as_py()
    return int(value) if value is not None else 0


def _numeric(values: pa.ChunkedArray, data_type: Any) -> NumericSummary | None:
    integer = pa.types.is_integer(data_type)
    if pa.types.is_decimal(data_type) or pa.types.is_float16(data_type):
        values = values.cast(pa.float64())
    non_finite = 0
    if not integer:
        finite = pc.is_finite(values)
        non_finite = len(values) - values.null_count - _int(pc.sum(finite))
        if non_finite:
            # Only then: filtering copies the column.
            values = values.filter(finite)
    count = len(values) - values.null_count
    if count == 0:
        return None
    # Moments in float64: an int64 sum of large values could overflow.
    as_float = values.cast(pa.float64()) if integer else values
    bounds = pc.min_max(as_float)
    low, high = float(bounds["min"].as_py()), float(bounds["max"].as_py())
    # Integer quantiles run on the integers themselves: Arrow counts instead of sorting.
    quantiles = pc.quantile(values, q=list(QUANTILES.values()), interpolation="linear")
    if integer and high - low + 1 <= HISTOGRAM_BINS:
        histogram = _unit_histogram(values, int(low), int(high))
    else:
        histogram = _histogram(as_float, low, high)
    return NumericSummary(
        count=count,
        non_finite=non_finite,
        min=low,
        max=high,
        mean=float(pc.mean(as_float).as_py()),
        std=float(pc.stddev(as_float, ddof=0).as_py()),
        quantiles=dict(zip(QUANTILES, (float(q) for q in quantiles.to_pylist()), strict=True)),
        histogram=histogram,
    )


def _unit_histogram(values: pa.ChunkedArray, low: int, high: int) -> Histogram:
    """One bin per integer: the counts of each value, with no arithmetic on the column."""
    counts = dict(_value_counts(values))
    return Histogram(
        edges=tuple(float(v) for v in range(low, high + 2)),
        counts=tuple(counts.get(v, 0) for v in range(low, high + 1)),
    )


def _histogram(values: pa.ChunkedArray, low: float, high: float) -> Histogram:
    span = high - low
    if not span / HISTOGRAM_BINS > 0 or not math.isfinite(span):
        # One value, a range too narrow to split (subnormal floats) or too wide to measure
        # (beyond float64): a single closed bin [low, high].
        return Histogram(edges=(low, high), counts=(len(values) - values.null_count,))
    bins, width = HISTOGRAM_BINS, span / HISTOGRAM_BINS
    edges = (*(low + i * width for i in range(bins)), high)
    index = pc.floor(pc.divide(pc.subtract(values, low), width)).cast(pa.int64())
    # The maximum lands one past the last bin, and rounding may put a value a hair outside.
    # skip_nulls=False keeps nulls null rather than clamping them into a bin.
    index = pc.min_element_wise(index, bins - 1, skip_nulls=False)
    index = pc.max_element_wise(index, 0, skip_nulls=False)
    counts = [0] * bins
    for position, amount in _value_counts(index):
        counts[position] = amount
    return Histogram(edges=edges, counts=tuple(counts))


def _value_counts(values: pa.ChunkedArray) -> list[tuple[Any, int]]:
    """(value, count) of the non-null values, in no particular order.

    Counting with the nulls in and dropping their entry afterwards avoids copying the column.
    """
    counted = pc.value_counts(values)
    pairs = zip(
        counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
    )
    return [(value, count) for value, count in pairs if value is not None]


def _categorical(values: pa.ChunkedArray, count: int) -> CategoricalSummary:
    if count == 0:
        return CategoricalSummary(distinct=0, top=())
    counted = pc.value_counts(values)
    frequencies = pa.table({"value": counted.field("values"), "count": counted.field("counts")})
    frequencies = frequencies.filter(pc.is_valid(frequencies.column("value")))
    top = frequencies.sort_by([("count", "descending"), ("value", "ascending")]).slice(0, TOP_K)
    return CategoricalSummary(
        distinct=frequencies.num_rows,
        top=tuple(
            zip(top.column("value").to_pylist(), top.column("count").to_pylist(), strict=True)
        ),
    )


def _temporal(values: pa.ChunkedArray, count: int) -> TemporalSummary | None:
    if count == 0:
        return None
    bounds = pc.min_max(values)
    return TemporalSummary(min=_iso(bounds["min"]), max=_iso(bounds["max"]))


def _iso(value: Any) -> str:
    if pa.types.is_timestamp(value.type) and value.type.unit == "ns":
        # Python datetimes stop at microseconds; as_py() would need pandas for nanoseconds.
        value = value.cast(pa.timestamp("us", value.type.tz), safe=False)
    moment = value.as_py()
    text: str = moment.isoformat()
    return text
