"""What one part of a table tells about a contract: counts, extremes and samples that merge.

    partial = ContractPartial.of(part, contract, now=now, max_samples=5, part=3)
    whole = first.merge(second)           # the same as the partial of both parts' rows

`check_contract` judges one partial of the whole table; the Spark engine computes one per
partition where the partition lives and merges them on the driver, so both engines apply the
same rules to the same numbers. Every figure a rule needs is a sum, a minimum or maximum, or a
union over the parts: null counts, offending-row counts, extremes, the values outside a domain
with their counts, the newest timestamp. Samples are the offending rows with the lowest
(part, row) position, so a merge keeps the first `max_samples` of them in the parts' order.

Work stays lazy where a part can decide alone: offending rows are counted and sampled only
when the part itself breaks a bound (a part whose minimum is above the bound has no row below
it), and the newest rows are sampled only when the part's newest is already stale. The one rule
that needs all rows at once, key uniqueness, is not here: see `DuplicateKeys`.

Values outside a domain are kept with exact counts up to `MAX_UNKNOWN` distinct values per
partial; beyond that their rows are still counted exactly, and the report says "at least".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.contracts import _arrow
from keel.contracts.model import ColumnContract, Contract, LogicalType
from keel.domain.times import TIME_KINDS, covers_until

__all__ = [
    "MAX_UNKNOWN",
    "PARSEABLE",
    "ColumnPartial",
    "ContractPartial",
    "DuplicateKeys",
    "Samples",
    "duplicate_keys",
    "type_passes",
]

#: How text that should have been typed looks, to point at the values that are not.
PARSEABLE: Final[dict[str, str]] = {
    "integer": r"^\s*[+-]?\d+\s*$",
    "float": r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$|^\s*[+-]?(?i:nan|inf|infinity)\s*$",
    "boolean": r"^\s*(?i:true|false|0|1)\s*$",
    "timestamp": r"^\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?(Z|[+-]\d{2}:?\d{2})?$",
    "date": r"^\d{4}-\d{2}-\d{2}$",
}
NUMERIC: Final = ("integer", "float")
#: Distinct out-of-domain values a partial counts one by one.
MAX_UNKNOWN: Final = 100_000
#: How many distinct unparseable values a type mismatch shows.
_EXAMPLES: Final = 3

#: Offending rows, each with its position (part, row): the first ones are kept.
Samples = tuple[tuple[tuple[int, int], dict[str, Any]], ...]


def type_passes(found: str | None, expected: LogicalType) -> bool:
    """Whether values of `found` fit `expected`: an all-null column fits any type, and
    integers are exact floats."""
    return found is None or found == expected or (expected == "float" and found == "integer")


@dataclass(frozen=True, slots=True)
class ColumnPartial:
    """One contract column in one part. Fields stay at their zero when a rule does not
    apply (the column is well typed, has no range, ...)."""

    found: str | None
    nulls: int = 0
    null_rows: Samples = ()
    #: A type mismatch: non-null values, those text values that do not parse, a few of those.
    valid: int = 0
    valid_rows: Samples = ()
    unparsed: int = 0
    unparsed_rows: Samples = ()
    unparsed_examples: tuple[Any, ...] = ()
    #: Numeric extremes, and the rows beyond the contract's bounds.
    low: Any = None
    high: Any = None
    below: int = 0
    below_rows: Samples = ()
    above: int = 0
    above_rows: Samples = ()
    #: Out-of-domain values: rows, counts per value, and whether some values went uncounted.
    unknown: int = 0
    unknown_counts: dict[Any, int] = field(default_factory=dict)
    unknown_overflow: bool = False
    unknown_rows: Samples = ()
    #: The newest timestamp or date, and the rows holding it when it is already stale.
    newest: Any = None
    newest_rows: Samples = ()

    def merge(self, other: ColumnPartial, limit: int) -> ColumnPartial:
        if self.found is not None and other.found is not None and self.found != other.found:
            raise ValueError(f"holds {self.found} in one part and {other.found} in another")
        counts = dict(self.unknown_counts)
        overflow = self.unknown_overflow or other.unknown_overflow
        for value, count in other.unknown_counts.items():
            if value in counts or len(counts) < MAX_UNKNOWN:
                counts[value] = counts.get(value, 0) + count
            else:
                overflow = True
        newest, newest_rows = self.newest, self.newest_rows
        if other.newest is not None and (newest is None or other.newest >= newest):
            same = newest is not None and other.newest == newest
            newest_rows = (
                _first(newest_rows + other.newest_rows, limit) if same else (other.newest_rows)
            )
            newest = other.newest
        return ColumnPartial(
            found=self.found if self.found is not None else other.found,
            nulls=self.nulls + other.nulls,
            null_rows=_first(self.null_rows + other.null_rows, limit),
            valid=self.valid + other.valid,
            valid_rows=_first(self.valid_rows + other.valid_rows, limit),
            unparsed=self.unparsed + other.unparsed,
            unparsed_rows=_first(self.unparsed_rows + other.unparsed_rows, limit),
            unparsed_examples=tuple(
                dict.fromkeys(self.unparsed_examples + other.unparsed_examples)
            )[:_EXAMPLES],
            low=_extreme(min, self.low, other.low),
            high=_extreme(max, self.high, other.high),
            below=self.below + other.below,
            below_rows=_first(self.below_rows + other.below_rows, limit),
            above=self.above + other.above,
            above_rows=_first(self.above_rows + other.above_rows, limit),
            unknown=self.unknown + other.unknown,
            unknown_counts=counts,
            unknown_overflow=overflow,
            unknown_rows=_first(self.unknown_rows + other.unknown_rows, limit),
            newest=newest,
            newest_rows=newest_rows,
        )


@dataclass(frozen=True, slots=True)
class ContractPartial:
    """The contract's figures over some rows: `rows`, the columns found (name and logical
    type, in order: `None` for a column of nulls only) and a `ColumnPartial` per contract
    column present."""

    rows: int
    schema: tuple[tuple[str, str | None], ...]
    columns: dict[str, ColumnPartial]
    max_samples: int

    @classmethod
    def of(
        cls,
        table: pa.Table,
        contract: Contract,
        *,
        now: datetime,
        max_samples: int = 5,
        part: int = 0,
        offset: int = 0,
    ) -> ContractPartial:
        """The partial of `table`, whose rows are rows `offset`... of part `part` (for the
        samples' order); `now` decides whether the newest rows are worth sampling."""
        scan = _Scan(table, contract, now, max_samples, part, offset)
        present = set(table.column_names)
        columns = {c.name: scan.column(c) for c in contract.columns if c.name in present}
        schema = tuple((f.name, _arrow.logical_type(_decoded(f.type))) for f in table.schema)
        return cls(table.num_rows, schema, columns, max_samples)

    def merge(self, other: ContractPartial) -> ContractPartial:
        """The partial of this part's rows followed by `other`'s. `ValueError` when the parts
        disagree on their columns or types."""
        if [n for n, _ in self.schema] != [n for n, _ in other.schema]:
            raise ValueError(
                "the parts have different columns: "
                f"{[n for n, _ in self.schema]} and {[n for n, _ in other.schema]}"
            )
        limit = self.max_samples
        columns = dict(self.columns)
        for name, column in other.columns.items():
            mine = columns.get(name)
            try:
                columns[name] = column if mine is None else mine.merge(column, limit)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        schema = tuple(
            (name, mine if mine is not None else theirs)
            for (name, mine), (_, theirs) in zip(self.schema, other.schema, strict=True)
        )
        return replace(self, rows=self.rows + other.rows, schema=schema, columns=columns)


@dataclass(frozen=True, slots=True)
class DuplicateKeys:
    """Rows sharing their key with another row: how many (`rows`), in how many keys, the
    first such key with its number of rows, and a few of the rows."""

    rows: int
    keys: int
    example: dict[str, Any] | None = None
    example_rows: int = 0
    samples: tuple[dict[str, Any], ...] = ()


def duplicate_keys(table: pa.Table, key: tuple[str, ...], max_samples: int) -> DuplicateKeys:
    """Repeated keys of a table in this process, the first in order of appearance."""
    if not _arrow.duplicate_count(table, key):
        return DuplicateKeys(0, 0)
    repeated = _arrow.repeated_keys(table, key)
    examples = repeated.slice(0, max(max_samples, 1))
    rows = sorted(p for group in examples[_arrow.POSITIONS].to_pylist() for p in group)
    chosen = pa.array(rows[:max_samples], pa.int64())
    first = examples.slice(0, 1).to_pylist()[0]
    return DuplicateKeys(
        rows=_arrow.count_rows(repeated),
        keys=repeated.num_rows,
        example={name: first[name] for name in key},
        example_rows=int(first[_arrow.COUNT]),
        samples=tuple(_arrow.rows_at(table, chosen)),
    )


class _Scan:
    """The figures of one table's columns."""

    def __init__(
        self, table: Any, contract: Contract, now: datetime, limit: int, part: int, offset: int
    ) -> None:
        self.table = table
        self.contract = contract
        self.now = now
        self.limit = limit
        self.part = part
        self.offset = offset
        self.stamp = contract.timestamp.column if contract.timestamp is not None else None

    def samples(self, mask: Any) -> Samples:
        if self.limit <= 0:
            return ()
        indices = _arrow.first_indices(mask, self.limit)
        rows = _arrow.rows_at(self.table, indices)
        return tuple(
            ((self.part, self.offset + int(i)), row)
            for i, row in zip(indices.to_pylist(), rows, strict=True)
        )

    def column(self, column: ColumnContract) -> ColumnPartial:
        values = _arrow.column(self.table, column.name)
        found = _arrow.logical_type(values.type)
        nulls: int = values.null_count
        wants_nulls = not column.nullable or column.max_null_rate is not None
        null_rows = self.samples(pc.is_null(values)) if nulls and wants_nulls else ()
        partial = ColumnPartial(found, nulls, null_rows)
        if not type_passes(found, column.type):
            return self._mismatch(partial, column.type, values)
        if column.range is not None and found in NUMERIC:
            partial = self._range(partial, column, values)
        if column.domain is not None:
            partial = self._domain(partial, column, values)
        if column.name == self.stamp and found in TIME_KINDS:
            partial = self._newest(partial, column, values)
        return partial

    def _mismatch(self, partial: ColumnPartial, expected: str, values: Any) -> ColumnPartial:
        valid_mask = pc.is_valid(values)
        partial = replace(
            partial, valid=len(values) - partial.nulls, valid_rows=self.samples(valid_mask)
        )
        if partial.found != "string" or expected not in PARSEABLE:
            return partial
        parses = pc.match_substring_regex(values, PARSEABLE[expected])
        bad = pc.and_(valid_mask, pc.invert(parses))
        count = _arrow.count_true(bad)
        if not count:
            return partial
        examples = pc.unique(values.filter(bad)).slice(0, _EXAMPLES).to_pylist()
        return replace(
            partial,
            unparsed=count,
            unparsed_rows=self.samples(bad),
            unparsed_examples=tuple(examples),
        )

    def _range(self, partial: ColumnPartial, column: ColumnContract, values: Any) -> ColumnPartial:
        assert column.range is not None
        extremes = pc.min_max(values)
        low, high = _arrow.scalar(extremes["min"]), _arrow.scalar(extremes["max"])
        partial = replace(partial, low=low, high=high)
        bound = column.range.min
        if bound is not None and low is not None and low < bound:
            mask = pc.less(values, bound)
            partial = replace(partial, below=_arrow.count_true(mask), below_rows=self.samples(mask))
        bound = column.range.max
        if bound is not None and high is not None and high > bound:
            mask = pc.greater(values, bound)
            partial = replace(partial, above=_arrow.count_true(mask), above_rows=self.samples(mask))
        return partial

    def _domain(self, partial: ColumnPartial, column: ColumnContract, values: Any) -> ColumnPartial:
        assert column.domain is not None
        allowed = pa.array(list(column.domain))
        uniques = pc.unique(values).drop_null()
        # Compare in the domain's type (int64 or string): the column may be int8 or large_string.
        known = pc.is_in(uniques.cast(allowed.type), value_set=allowed)
        unknown = uniques.filter(pc.invert(known))
        if len(unknown) == 0:
            return partial
        mask = pc.is_in(values, value_set=unknown)
        counts = pc.value_counts(values.filter(mask))
        pairs = zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        )
        kept = dict(pair for pair, _ in zip(pairs, range(MAX_UNKNOWN), strict=False))
        return replace(
            partial,
            unknown=_arrow.count_true(mask),
            unknown_counts=kept,
            unknown_overflow=len(counts) > len(kept),
            unknown_rows=self.samples(mask),
        )

    def _newest(self, partial: ColumnPartial, column: ColumnContract, values: Any) -> ColumnPartial:
        assert self.contract.timestamp is not None
        newest_scalar = pc.max(values)
        newest = _arrow.scalar(newest_scalar)
        if newest is None:
            return partial
        rows: Samples = ()
        # A part whose newest row is fresh holds none of the rows a stale report shows.
        if self.now - covers_until(newest) > self.contract.timestamp.freshness:
            rows = self.samples(pc.equal(values, newest_scalar))
        return replace(partial, newest=newest, newest_rows=rows)


def _decoded(data_type: Any) -> Any:
    return data_type.value_type if pa.types.is_dictionary(data_type) else data_type


def _first(samples: Samples, limit: int) -> Samples:
    return tuple(sorted(samples, key=lambda sample: sample[0])[:limit])


def _extreme(pick: Callable[[Iterable[Any]], Any], left: Any, right: Any) -> Any:
    if left is None:
        return right
    if right is None:
        return left
    return pick((left, right))
