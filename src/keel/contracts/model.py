"""A data contract: the expected schema and statistics of a table, as plain frozen values.

The model knows nothing of Arrow, pandas or YAML: `keel.contracts.io` reads and writes it as the
versioned `kind: keel/contract` document teams review, `infer` derives it from reference data and
`check` holds data against it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal, get_args

__all__ = [
    "CONTRACT_KIND",
    "CONTRACT_VERSION",
    "LOGICAL_TYPES",
    "ColumnContract",
    "Contract",
    "ContractMetadata",
    "DomainValue",
    "ExtraColumns",
    "LogicalType",
    "NumericRange",
    "RowBounds",
    "TimestampRule",
]

#: The document tag and format version; both are written into every contract file.
CONTRACT_KIND: Final = "keel/contract"
CONTRACT_VERSION: Final = 1

LogicalType = Literal["integer", "float", "string", "boolean", "timestamp", "date"]
LOGICAL_TYPES: Final[tuple[LogicalType, ...]] = get_args(LogicalType)

#: What to do with a column the contract does not list: a warning, an error, or nothing.
ExtraColumns = Literal["warn", "error", "allow"]

#: A value of a categorical domain (strings or integers; booleans need no domain).
DomainValue = str | int


@dataclass(frozen=True, slots=True)
class NumericRange:
    """Inclusive bounds on the values of a numeric column; either side may be open."""

    min: int | float | None = None
    max: int | float | None = None


@dataclass(frozen=True, slots=True)
class RowBounds:
    """Inclusive bounds on the number of rows."""

    min: int | None = None
    max: int | None = None

    def contains(self, rows: int) -> bool:
        return (self.min is None or rows >= self.min) and (self.max is None or rows <= self.max)


@dataclass(frozen=True, slots=True)
class ColumnContract:
    """What one column must look like.

    `nullable=False` means the reference had no nulls and any null now is a new null pattern;
    `max_null_rate` bounds the share of nulls in a nullable column; `domain`, when set, lists
    every allowed value of a low-cardinality column.
    """

    name: str
    type: LogicalType
    nullable: bool = True
    max_null_rate: float | None = None
    range: NumericRange | None = None
    domain: tuple[DomainValue, ...] | None = None


@dataclass(frozen=True, slots=True)
class TimestampRule:
    """The column that says when a row happened, and how old its newest value may be."""

    column: str
    freshness: timedelta


@dataclass(frozen=True, slots=True)
class ContractMetadata:
    """Where a contract came from; informative only, never checked."""

    inferred_from: str | None = None
    inferred_at: datetime | None = None
    keel_version: str | None = None


@dataclass(frozen=True, slots=True)
class Contract:
    """The whole contract: columns in order, plus table-level rules.

    `key` lists the columns whose values together identify a row (checked for duplicates);
    `extra_columns` says how a column missing from `columns` is reported.
    """

    columns: tuple[ColumnContract, ...]
    key: tuple[str, ...] = ()
    timestamp: TimestampRule | None = None
    rows: RowBounds | None = None
    extra_columns: ExtraColumns = "warn"
    metadata: ContractMetadata = field(default_factory=ContractMetadata)

    def __iter__(self) -> Iterator[ColumnContract]:
        return iter(self.columns)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> ColumnContract | None:
        """The contract of the column called `name`, or None when the contract does not list it."""
        for column in self.columns:
            if column.name == name:
                return column
        return None
