"""What a manifest version records of its files, built in parts that merge: one part per
stretch of files, wherever it is read.

    part = ScanPart(timestamp)
    for index, (name, table, dropped) in enumerate(files):   # one file in memory at a time
        part.add(index, name, table, dropped)
    scanned = part.result(names)       # or parts merged first: first.merge(second)

`ScanPart.add` is the one step every file goes through, whichever engine reads it (in this
process, `keel.data.manifest`; on Spark, `keel.engines`): its timestamp column typed, Parquet's
types, combined with the files before it (same columns, types widened only where no value
changes), then counted into a `keel.data.profiling.StreamedProfile`. A part keeps each file's
schema (the distinct ones once), so `result` redoes the combining over every file in order and
refuses a file as reading them all in one process would, naming the same files; and it keeps
the first `DataError` its files raised, raised by `result` in file order too.

A part crosses processes as JSON (`to_json`, `from_json`): the profile's sketches, counts and
time bounds, the schemas as Arrow IPC, no pickles.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

from keel.data.profiling import StreamedProfile
from keel.data.read import combine_tables
from keel.data.stored import as_stored, typed_timestamps
from keel.domain.dataset import LeftOutColumn, TimeRange
from keel.errors import DataError
from keel.stats.profile import Profile

if TYPE_CHECKING:
    from keel.data.lake import Location
    from keel.domain.dataset import Manifest

__all__ = ["ManifestScan", "ScanPart", "Scanned"]


@dataclass(frozen=True, slots=True)
class Scanned:
    """What a manifest version records of its data, read from its files."""

    profile: Profile
    columns: tuple[tuple[str, str], ...]
    time_range: TimeRange | None
    left_out: tuple[LeftOutColumn, ...]


#: How a manifest's files (at a location, with the timestamp column's name) become what the
#: version records: in this process (`keel.data.manifest.scan_manifest`) or an engine's way.
ManifestScan: TypeAlias = "Callable[[Location, Manifest, str | None], Scanned]"


class ScanPart:
    """The scan of some of a manifest's files (by their index in the manifest), mergeable
    with the parts of the files after them."""

    def __init__(self, timestamp: str | None) -> None:
        self.timestamp = timestamp
        self.streamed = StreamedProfile()
        self.time_range: TimeRange | None = None
        self.left_out: dict[LeftOutColumn, None] = {}
        self.error: tuple[int, DataError] | None = None
        self._schemas: list[pa.Schema] = []
        #: (index in the manifest, position in `_schemas`), in the order added.
        self._files: list[tuple[int, int]] = []
        #: This part's first file's name and the types of its files so far.
        self._shape: tuple[str, pa.Table] | None = None
        self._later: list[ScanPart] = []

    def add(self, index: int, name: str, table: pa.Table, dropped: Sequence[LeftOutColumn]) -> None:
        """Count file `index` (its full `name`, its table as read, the columns left out of
        it) into the part. `DataError` for a file that cannot join the ones before."""
        self.left_out.update(dict.fromkeys(dropped))
        table, time_range = typed_timestamps(table, self.timestamp, name)
        table = as_stored(table)
        self._files.append((index, self._schema_position(table.schema)))
        if self._shape is not None:
            table = combine_tables([self._shape, (name, table)])
        self._shape = (self._shape[0] if self._shape else name, table.slice(0, 0))
        if time_range is not None:
            seen = self.time_range
            if seen is not None:
                start, end = min(seen.start, time_range.start), max(seen.end, time_range.end)
                time_range = TimeRange(seen.column, start, end)
            self.time_range = time_range
        self.streamed.update(table)

    def fail(self, index: int, error: DataError) -> None:
        """File `index` could not be read or added: the part ends there."""
        if self.error is None or index < self.error[0]:
            self.error = (index, error)

    def merge(self, other: ScanPart) -> None:
        """Add `other`, the part of files after this one's. The parts are combined by
        `result`, once their files are known to fit together: two parts may each be sound
        and disagree with each other (a column of numbers in one, of text in the other)."""
        self._later.append(other)

    def result(self, names: Sequence[str]) -> Scanned:
        """What the version records; `names` are the manifest's files' full names, by index.

        Raises the first problem in file order, as reading the files one after another
        would: a file that cannot be read, or whose columns disagree with the files before."""
        parts = self._parts()
        errors = [part.error for part in parts if part.error is not None]
        error = min(errors, key=lambda found: found[0]) if errors else None
        files = sorted(
            ((index, part._schemas[position]) for part in parts for index, position in part._files),
            key=lambda entry: entry[0],
        )
        shape: tuple[str, pa.Table] | None = None
        for index, schema in files:
            if error is not None and index > error[0]:
                break
            table = schema.empty_table()
            name = names[index]
            if shape is not None:
                table = combine_tables([shape, (name, table)])
            shape = (shape[0] if shape else name, table)
        if error is not None:
            raise error[1]
        if shape is None:
            raise DataError("a manifest version needs at least one file")
        streamed = StreamedProfile()
        left_out: dict[LeftOutColumn, None] = {}
        ranges = []
        for part in parts:
            streamed.merge(part.streamed)
            left_out.update(part.left_out)
            if part.time_range is not None:
                ranges.append(part.time_range)
        time_range = None
        if ranges:
            start, end = min(r.start for r in ranges), max(r.end for r in ranges)
            time_range = TimeRange(ranges[0].column, start, end)
        schema = shape[1].schema
        return Scanned(
            streamed.profile(schema),
            tuple((f.name, str(f.type)) for f in schema),
            time_range,
            tuple(left_out),
        )

    def _parts(self) -> list[ScanPart]:
        """This part and those merged into it, in file order."""
        found = [self]
        for later in self._later:
            found += later._parts()
        return sorted(found, key=_first_index)

    def to_json(self) -> str:
        """The part as JSON (not the parts merged into it: each crosses on its own)."""
        error = None
        if self.error is not None:
            index, problem = self.error
            error = {
                "index": index,
                "message": problem.message,
                "path": problem.path,
                "hint": problem.hint,
            }
        time_range = self.time_range
        document = {
            "timestamp": self.timestamp,
            "files": self._files,
            "schemas": [
                base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")
                for schema in self._schemas
            ],
            "profile": self.streamed.to_dict(),
            "time_range": None
            if time_range is None
            else [time_range.column, time_range.start.isoformat(), time_range.end.isoformat()],
            "left_out": [column.to_dict() for column in self.left_out],
            "error": error,
        }
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ScanPart:
        """`to_json`'s document read back (keel wrote it: a malformed one is a bug, raised)."""
        document: dict[str, Any] = json.loads(text)
        part = cls(document["timestamp"])
        part._schemas = [
            pa.ipc.read_schema(pa.py_buffer(base64.b64decode(encoded)))
            for encoded in document["schemas"]
        ]
        part._files = [(int(index), int(position)) for index, position in document["files"]]
        part.streamed = StreamedProfile.from_dict(document["profile"])
        if document["time_range"] is not None:
            column, start, end = document["time_range"]
            part.time_range = TimeRange(
                column, datetime.fromisoformat(start), datetime.fromisoformat(end)
            )
        part.left_out = dict.fromkeys(LeftOutColumn(**column) for column in document["left_out"])
        error = document["error"]
        if error is not None:
            problem = DataError(error["message"], path=error["path"], hint=error["hint"])
            part.error = (int(error["index"]), problem)
        return part

    def _schema_position(self, schema: pa.Schema) -> int:
        # Names and types are what combining reads; metadata (pandas' index ranges, field
        # ids) differs from file to file and would keep a schema per file.
        schema = pa.schema([(field.name, field.type) for field in schema])
        for position, known in enumerate(self._schemas):
            if known.equals(schema):
                return position
        self._schemas.append(schema)
        return len(self._schemas) - 1


def _first_index(part: ScanPart) -> int:
    """The part's first file: its first one added, or the one it failed on before any."""
    if part._files:
        return part._files[0][0]
    return part.error[0] if part.error is not None else -1
