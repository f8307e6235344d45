"""Dataset versions: immutable snapshots of input data, named by a digest of their content.

A `DatasetVersion` is what `keel data snapshot` records: where the data came from, what it
holds (rows, schema, time range) and the two stored objects that make it reusable, the
data as Parquet and its statistics profile. Pure: no storage, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from keel.domain.digest import ALGORITHM, Digest

__all__ = [
    "LATEST",
    "MIN_PREFIX",
    "DatasetRef",
    "DatasetVersion",
    "LeftOutColumn",
    "SourceFile",
    "TimeRange",
    "parse_dataset_ref",
]

#: The reference that names the most recently recorded version.
LATEST: Final = "latest"
#: Fewer hex characters than this would too often name several versions at once.
MIN_PREFIX: Final = 6

_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True, slots=True, order=True)
class SourceFile:
    """One input file of a version: its name relative to the source, size and digest."""

    path: str  # relative, with "/" separators, so the id does not depend on where data sits
    size: int
    digest: Digest

    def __post_init__(self) -> None:
        if not self.path or self.path.startswith("/"):
            raise ValueError(f"source file path must be relative and non-empty, got {self.path!r}")
        if self.size < 0:
            raise ValueError(f"source file size must be zero or more, got {self.size}")


@dataclass(frozen=True, slots=True)
class LeftOutColumn:
    """A column of the source that is not part of the data, e.g. a row index pandas wrote.

    `position` counts from 1 in the source's header; `name` is the header as written ("" when
    it was empty); `reason` says why it was left out.
    """

    position: int
    name: str
    reason: str

    def __post_init__(self) -> None:
        if self.position < 1:
            raise ValueError(f"a column position counts from 1, got {self.position}")

    def describe(self) -> str:
        header = f"'{self.name}'" if self.name.strip() else "with no header"
        return f"column {self.position} {header}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "name": self.name, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class TimeRange:
    """The oldest and newest value of the timestamp column, in UTC."""

    column: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time range bounds must be timezone-aware")
        if self.start > self.end:
            raise ValueError(f"time range starts after it ends: {self.start} > {self.end}")


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """An immutable snapshot of input data.

    `id` is the digest of a canonical description of the content (see
    `keel.data.snapshot`): the same content snapshotted twice is the same version.
    `columns` is the Arrow schema as `(name, type)` pairs, e.g. `("distance", "int64")`.
    `time_range` is None when no timestamp column is configured or it holds only nulls.
    `files` (sorted by path) is empty for a SQL source, whose `query` is recorded instead.
    `left_out` lists the source's columns that are not in the data (row indexes, see
    `keel.contracts.columns`).
    """

    id: Digest
    source: str
    format: str
    rows: int
    columns: tuple[tuple[str, str], ...]
    time_range: TimeRange | None
    parquet: Digest
    profile: Digest
    created_at: datetime
    created_by: str
    files: tuple[SourceFile, ...] = ()
    query: str | None = None
    left_out: tuple[LeftOutColumn, ...] = ()

    def __post_init__(self) -> None:
        if self.rows < 0:
            raise ValueError(f"rows must be zero or more, got {self.rows}")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        names = [name for name, _ in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"column names must be unique, got {names}")
        paths = [file.path for file in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError(f"source file paths must be unique, got {paths}")
        # One canonical order, so equal versions compare equal however they were built.
        object.__setattr__(self, "files", tuple(sorted(self.files)))

    @property
    def short(self) -> str:
        """The first 12 hex characters of the id, enough to name it to a person."""
        return self.id.short

    @property
    def holder(self) -> str:
        """The name under which this version holds its objects against garbage collection."""
        return f"dataset:{self.id.hex}"

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document (ids as `blake3:<hex>`, times ISO-8601 in UTC)."""
        time_range = self.time_range
        return {
            "id": str(self.id),
            "source": self.source,
            "query": self.query,
            "format": self.format,
            "rows": self.rows,
            "columns": [{"name": name, "type": kind} for name, kind in self.columns],
            "time_range": None
            if time_range is None
            else {
                "column": time_range.column,
                "start": time_range.start.isoformat(),
                "end": time_range.end.isoformat(),
            },
            "parquet": str(self.parquet),
            "profile": str(self.profile),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "files": [
                {"path": f.path, "size": f.size, "digest": str(f.digest)} for f in self.files
            ],
            "left_out": [column.to_dict() for column in self.left_out],
        }


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """A parsed reference to a version: `latest`, a full id, or a unique prefix of one."""

    kind: Literal["latest", "id", "prefix"]
    value: str  # "" for latest, 64 hex for an id, 6 to 63 hex for a prefix

    @property
    def digest(self) -> Digest:
        if self.kind != "id":
            raise ValueError(f"a {self.kind} reference is not a full id")
        return Digest.of_hex(self.value)


def parse_dataset_ref(text: str) -> DatasetRef:
    """Read what a user typed to name a version. `ValueError` says what is accepted.

    Accepted: `latest`; `blake3:<64 hex>` or the bare hex; or at least `MIN_PREFIX` leading
    hex characters of an id (with or without `blake3:`), case-insensitive.
    """
    ref = text.strip().lower()
    if ref == LATEST:
        return DatasetRef("latest", "")
    algorithm, sep, hexpart = ref.partition(":")
    if not sep:
        hexpart = algorithm
    elif algorithm != ALGORITHM:
        raise ValueError(f"unknown digest algorithm {algorithm!r} in {text!r}; keel uses blake3")
    if not _HEX.match(hexpart) or len(hexpart) > 64:
        raise ValueError(
            f"{text!r} is not a dataset reference: expected 'latest', a version id, "
            f"or at least {MIN_PREFIX} hex characters of one"
        )
    if len(hexpart) == 64:
        return DatasetRef("id", hexpart)
    if len(hexpart) < MIN_PREFIX:
        raise ValueError(
            f"{text!r} is too short to name a dataset version: give at least "
            f"{MIN_PREFIX} hex characters of its id"
        )
    return DatasetRef("prefix", hexpart)
