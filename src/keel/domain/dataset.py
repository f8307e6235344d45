"""Dataset versions: immutable snapshots of input data, named by a digest of their content.

A `DatasetVersion` is what `keel data snapshot` records: where the data came from, what it
holds (rows, schema, time range) and the two stored objects that make it reusable: the data
(a Parquet copy, or for a table that stays in a lake a `Manifest` of its files) and its
statistics profile. Pure: no storage, no I/O.
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
    "Manifest",
    "ManifestFile",
    "SourceFile",
    "TimeRange",
    "parse_dataset_ref",
]

#: The reference that names the most recently recorded version.
LATEST: Final = "latest"
#: Fewer hex characters than this would too often name several versions at once.
MIN_PREFIX: Final = 6
MANIFEST_KIND: Final = "keel/dataset-manifest"
MANIFEST_VERSION: Final = 1

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


@dataclass(frozen=True, slots=True, order=True)
class ManifestFile:
    """One file of a manifest: its name under the table's location, size and identity.

    `identity` is `blake3:<hex>` for a local file (its content digest) or `etag:<etag>` for an
    object in S3 (what S3 says about its content without it being read). `partition` holds a
    Delta table's partition values for the file (column, value as the log writes it, or None),
    which Delta keeps in its log rather than in the file.
    """

    path: str
    size: int
    identity: str
    partition: tuple[tuple[str, str | None], ...] = ()

    def __post_init__(self) -> None:
        if not self.path or self.path.startswith("/") or "://" in self.path:
            raise ValueError(f"manifest file path must be relative, got {self.path!r}")
        if ".." in self.path.split("/"):
            raise ValueError(f"manifest file path must stay under the table, got {self.path!r}")
        if self.size < 0:
            raise ValueError(f"manifest file size must be zero or more, got {self.size}")
        if not self.identity.startswith(("blake3:", "etag:")):
            raise ValueError(
                f"manifest file identity must be blake3:... or etag:..., got {self.identity!r}"
            )


@dataclass(frozen=True, slots=True)
class Manifest:
    """The files a version of a lake table is made of, recorded instead of a copy.

    `location` is where the files are (an absolute folder or `s3://bucket/prefix`), `table` how
    they form a table (`parquet`: every Parquet file under the location; `delta`: the files of
    Delta table version `delta_version`), and `partition_types` the Arrow types of a Delta
    table's partition columns. Files are kept sorted by path.
    """

    location: str
    table: Literal["parquet", "delta"]
    files: tuple[ManifestFile, ...]
    delta_version: int | None = None
    partition_types: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.files:
            raise ValueError("a manifest lists at least one file")
        if (self.table == "delta") != (self.delta_version is not None):
            raise ValueError("a Delta manifest has a table version, and only a Delta manifest")
        object.__setattr__(self, "files", tuple(sorted(self.files)))
        paths = [file.path for file in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("manifest file paths must be unique")

    @property
    def bytes(self) -> int:
        return sum(file.size for file in self.files)

    def describe(self) -> dict[str, Any]:
        """What the version id covers (see `keel.data.snapshot`): everything but nothing else."""
        return {
            "location": self.location,
            "table": self.table,
            "delta_version": self.delta_version,
            "partition_types": [list(pair) for pair in self.partition_types],
            "files": [
                [f.path, f.size, f.identity, [list(pair) for pair in f.partition]]
                for f in self.files
            ],
        }

    def summary(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "table": self.table,
            "files": len(self.files),
            "bytes": self.bytes,
            "delta_version": self.delta_version,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"kind": MANIFEST_KIND, "version": MANIFEST_VERSION, **self.describe()}

    @classmethod
    def from_dict(cls, document: Any) -> Manifest:
        """Read `to_dict`'s document; `ValueError` saying what is wrong."""
        if not isinstance(document, dict) or document.get("kind") != MANIFEST_KIND:
            raise ValueError(f"not a keel dataset manifest (expected kind {MANIFEST_KIND})")
        if document.get("version") != MANIFEST_VERSION:
            raise ValueError(f"dataset manifest version {document.get('version')!r} is not known")
        try:
            return cls(
                location=str(document["location"]),
                table=document["table"],
                delta_version=document["delta_version"],
                partition_types=tuple((str(k), str(v)) for k, v in document["partition_types"]),
                files=tuple(
                    ManifestFile(
                        str(path),
                        int(size),
                        str(identity),
                        tuple((str(k), None if v is None else str(v)) for k, v in partition),
                    )
                    for path, size, identity, partition in document["files"]
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed dataset manifest: {exc}") from None


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
    `keel.contracts.columns`). The data is stored as one of two objects: `parquet`, a copy,
    or `manifest`, a `Manifest` document naming the files where they stay; the other is None.
    """

    id: Digest
    source: str
    format: str
    rows: int
    columns: tuple[tuple[str, str], ...]
    time_range: TimeRange | None
    parquet: Digest | None
    profile: Digest
    created_at: datetime
    created_by: str
    files: tuple[SourceFile, ...] = ()
    query: str | None = None
    left_out: tuple[LeftOutColumn, ...] = ()
    manifest: Digest | None = None

    def __post_init__(self) -> None:
        if (self.parquet is None) == (self.manifest is None):
            raise ValueError("a dataset version has a Parquet copy or a manifest, one of the two")
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
    def data(self) -> Digest:
        """The stored object the data is read through: the Parquet copy or the manifest."""
        stored = self.parquet if self.parquet is not None else self.manifest
        assert stored is not None  # __post_init__ holds one of the two
        return stored

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
            "parquet": None if self.parquet is None else str(self.parquet),
            "manifest": None if self.manifest is None else str(self.manifest),
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
