"""Which drift test a column gets, or why it gets none: decided here for every caller (`keel
drift`, monitoring windows, training-serving skew, the HTML reports), so a column is left out
for the same reason, in the same words, wherever it is compared.

    choice = choose_test("dep_time", ColumnSide.of(ref_column), ColumnSide.of(cur_column))
    if isinstance(choice, Skipped):
        print(choice.reason)          # "timestamps and dates are not tested for drift"

A column is not compared when it holds dates or timestamps (their values move by design), when
no test takes its type (lists, structs, a column read as nothing but nulls), or when one side
has no value to compare (all null, or no finite number). Two sides of different kinds
(numbers in one, text in the other) are not a skip but an error: the data disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.serial import dump
from keel.stats.drift.registry import TESTS, default_test
from keel.stats.sketch import ColumnKind, column_kind, finite_numbers

if TYPE_CHECKING:
    from keel.stats.drift.base import DriftTest
    from keel.stats.sketch import ColumnSketch

__all__ = ["ColumnSide", "Skipped", "choose_test"]

TEMPORAL_REASON = "timestamps and dates are not tested for drift"


@dataclass(frozen=True, slots=True)
class ColumnSide:
    """What the choice needs to know of one side of a column.

    `values` counts what a test would compare: the non-null values, less NaN and infinities
    for numbers.
    """

    kind: ColumnKind | None
    arrow_type: str
    rows: int
    nulls: int
    values: int

    @classmethod
    def of(cls, column: Any) -> ColumnSide:
        """One side read from an Arrow column (or chunked array)."""
        kind = column_kind(column.type)
        rows, nulls = len(column), column.null_count
        values = len(finite_numbers(column)) if kind == "numeric" else rows - nulls
        return cls(kind, str(column.type), rows, nulls, values)

    @classmethod
    def of_sketch(cls, sketch: ColumnSketch) -> ColumnSide:
        """One side read from a column's sketch."""
        return cls(sketch.kind, sketch.arrow_type, sketch.count, sketch.nulls, sketch.values)

    @property
    def all_null(self) -> bool:
        return self.nulls == self.rows


@dataclass(frozen=True, slots=True)
class Skipped:
    """A column left out of the comparison, and why (in the user's words)."""

    column: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


def choose_test(
    column: str,
    reference: ColumnSide,
    current: ColumnSide,
    chosen: DriftTest | None = None,
) -> DriftTest | Skipped:
    """The test for `column`: `chosen` where it takes the column's kind, else the kind's
    default for these sample sizes (`default_test`); or why the column is not compared.

    `ValueError` when the two sides are of different kinds.
    """
    if reference.kind == "temporal":
        return Skipped(column, TEMPORAL_REASON)
    if reference.kind is None:
        return Skipped(column, f"no drift test for {reference.arrow_type} values")
    if current.kind is not None and current.kind != reference.kind:
        raise ValueError(
            f"column {column!r} is {reference.kind} in the reference but {current.kind} now "
            f"({reference.arrow_type} -> {current.arrow_type})"
        )
    for side, name in ((reference, "reference"), (current, "current data")):
        if side.all_null:
            return Skipped(column, f"no value in the {name}")
    if current.kind is None or reference.values == 0 or current.values == 0:
        return Skipped(column, "no finite value on one side")
    if chosen is not None and reference.kind in chosen.kinds:
        return chosen
    return TESTS[default_test(reference.kind, reference.values, current.values)]
