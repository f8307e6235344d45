"""The files of a Delta table version, read from its `_delta_log` (Delta Lake's protocol).

    table = read_delta_log(location, version=None)     # the newest version
    table.version, table.files                          # 12, [DeltaFile("part-0.parquet", ...)]

The log is a folder of numbered commits (`00000000000000000012.json`, one JSON action per line)
and, now and then, checkpoints (`...12.checkpoint.parquet`, or in parts
`...12.checkpoint.0000000001.0000000002.parquet`) holding the state up to that commit. The files
of version V are those of the newest complete checkpoint at or below V, then every commit after
it up to V replayed in order: `add` puts a file in, `remove` takes it out. keel reads this
itself rather than through delta-rs: a few hundred lines of protocol against a 40 MB native
dependency, and the reading back is plain Parquet.

Tables keel cannot read correctly are refused, naming what is missing: deletion vectors (rows
deleted without rewriting the file), column mapping (Parquet columns under other names), V2
checkpoints and any reader feature not listed in `_SUPPORTED_FEATURES`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

from keel.data.lake import Location
from keel.errors import DataError

__all__ = ["LOG_FOLDER", "DeltaFile", "DeltaTable", "arrow_type", "is_delta", "read_delta_log"]

LOG_FOLDER: Final = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet$")
#: Reader features that change nothing about which files hold which rows.
_SUPPORTED_FEATURES: Final = frozenset(
    {"timestampNtz", "vacuumProtocolCheck", "deletionVectors", "columnMapping"}
)
_PRIMITIVES: Final = {
    "string": pa.string(),
    "long": pa.int64(),
    "integer": pa.int32(),
    "short": pa.int16(),
    "byte": pa.int8(),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "binary": pa.binary(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", "UTC"),
    "timestamp_ntz": pa.timestamp("us"),
}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")


@dataclass(frozen=True, slots=True)
class DeltaFile:
    """A data file of the table: its path under the table folder, size, partition values."""

    path: str
    size: int
    partition: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class DeltaTable:
    """One version of a Delta table: its files and the Delta types of its partition columns."""

    version: int
    files: tuple[DeltaFile, ...]
    partition_types: tuple[tuple[str, str], ...] = ()


def is_delta(location: Location) -> bool:
    """Whether the location is a Delta table (it has a `_delta_log/` with entries)."""
    return any(_COMMIT.match(_name(p)) for p in location.listing(LOG_FOLDER))


def arrow_type(delta_type: str) -> Any:
    """The Arrow type of a Delta primitive type name (`long`, `decimal(10,2)`, ...)."""
    found = _PRIMITIVES.get(delta_type)
    if found is not None:
        return found
    decimal = _DECIMAL.match(delta_type)
    if decimal:
        return pa.decimal128(int(decimal[1]), int(decimal[2]))
    raise ValueError(f"Delta type {delta_type!r} is not a partition type keel reads")


def read_delta_log(location: Location, *, version: int | None = None) -> DeltaTable:
    """The files of `version` (default: the newest) of the Delta table at `location`."""
    where = f"{location.url}/{LOG_FOLDER}"
    commits: dict[int, str] = {}
    checkpoints: dict[int, dict[tuple[int, int], str]] = {}
    for path in location.listing(LOG_FOLDER):
        name = _name(path)
        if match := _COMMIT.match(name):
            commits[int(match[1])] = path
        elif match := _CHECKPOINT.match(name):
            part = (int(match[2] or 1), int(match[3] or 1))
            checkpoints.setdefault(int(match[1]), {})[part] = path
    if not commits and not checkpoints:
        raise DataError(f"{where}: no Delta commits found", path=where)
    newest = max([*commits, *checkpoints])
    if version is None:
        version = newest
    elif version < 0 or version > newest:
        raise DataError(
            f"{location.url}: Delta table version {version} does not exist "
            f"(the newest is {newest})",
            path=location.url,
        )
    complete = [
        number for number, parts in checkpoints.items() if number <= version and _complete(parts)
    ]
    start = max(complete, default=-1)
    files: dict[str, DeltaFile] = {}
    state = _State()
    if start >= 0:
        for _, part_path in sorted(checkpoints[start].items()):
            for action in _checkpoint_actions(location, part_path):
                state.apply(action, files, f"{location.url}/{part_path}")
    for number in range(start + 1, version + 1):
        commit = commits.get(number)
        if commit is None:
            raise DataError(
                f"{where}: commit {number} is missing, so version {version} cannot be read "
                "(log entries older than the last checkpoint are removed by log cleanup)",
                path=where,
            )
        for line_number, line in enumerate(location.read_bytes(commit).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                action = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{location.url}/{commit}: line {line_number} is not JSON: {exc.msg}",
                    path=commit,
                ) from None
            state.apply(action, files, f"{location.url}/{commit}")
    state.check(location.url)
    return DeltaTable(
        version=version,
        files=tuple(sorted(files.values(), key=lambda f: f.path)),
        partition_types=state.partition_types(location.url),
    )


class _State:
    """The protocol and metadata seen so far while replaying the log."""

    def __init__(self) -> None:
        self.protocol: dict[str, Any] = {}
        self.metadata: dict[str, Any] = {}

    def apply(self, action: Any, files: dict[str, DeltaFile], where: str) -> None:
        if not isinstance(action, dict):
            raise DataError(f"{where}: a log action is not a JSON object", path=where)
        if (add := action.get("add")) is not None:
            if add.get("deletionVector"):
                raise DataError(
                    f"{where}: file {add.get('path')} has a deletion vector (rows deleted "
                    "without rewriting it), which keel does not read",
                    path=where,
                    hint="rewrite the table without deletion vectors (REORG TABLE ... APPLY "
                    "(PURGE)), or snapshot a copy instead of a manifest",
                )
            path = _file_path(add, where)
            partition = add.get("partitionValues") or {}
            files[path] = DeltaFile(
                path=path,
                size=int(add["size"]),
                partition=tuple(sorted((str(k), _text(v)) for k, v in partition.items())),
            )
        elif (remove := action.get("remove")) is not None:
            files.pop(_file_path(remove, where), None)
        elif (protocol := action.get("protocol")) is not None:
            self.protocol = protocol
        elif (metadata := action.get("metaData")) is not None:
            self.metadata = metadata

    def check(self, url: str) -> None:
        reader = int(self.protocol.get("minReaderVersion", 1))
        if reader > 3:
            raise DataError(
                f"{url}: the Delta table needs reader version {reader}; keel reads up to 3",
                path=url,
            )
        unknown = sorted(set(self.protocol.get("readerFeatures") or ()) - _SUPPORTED_FEATURES)
        if unknown:
            raise DataError(
                f"{url}: the Delta table uses reader feature {unknown[0]}, which keel "
                "does not read",
                path=url,
                hint="snapshot a copy of the table instead of a manifest",
            )
        mode = (self.metadata.get("configuration") or {}).get("delta.columnMapping.mode", "none")
        if mode != "none":
            raise DataError(
                f"{url}: the Delta table maps column names (delta.columnMapping.mode: {mode}), "
                "which keel does not read",
                path=url,
                hint="snapshot a copy of the table instead of a manifest",
            )

    def partition_types(self, url: str) -> tuple[tuple[str, str], ...]:
        columns = self.metadata.get("partitionColumns") or []
        if not columns:
            return ()
        try:
            schema = json.loads(self.metadata["schemaString"])
            types = {f["name"]: f["type"] for f in schema["fields"]}
            pairs = tuple((str(name), str(types[name])) for name in columns)
            for _, kind in pairs:
                arrow_type(kind)
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise DataError(f"{url}: the Delta table's schema cannot be read: {exc}") from None
        except ValueError as exc:
            raise DataError(f"{url}: {exc}", path=url) from None
        return pairs


def _complete(parts: dict[tuple[int, int], str]) -> bool:
    totals = {total for _, total in parts}
    if len(totals) != 1:
        return False
    total = totals.pop()
    return sorted(index for index, _ in parts) == list(range(1, total + 1))


def _checkpoint_actions(location: Location, path: str) -> list[dict[str, Any]]:
    where = f"{location.url}/{path}"
    try:
        table = pq.read_table(pa.BufferReader(location.read_bytes(path)))
    except pa.ArrowException as exc:
        raise DataError(f"{where}: not a readable checkpoint: {exc}", path=where) from None
    wanted = [c for c in ("protocol", "metaData", "add", "remove") if c in table.column_names]
    actions = []
    for row in table.select(wanted).to_pylist():
        for kind, value in row.items():
            if value is not None:
                if kind == "metaData" and isinstance(value.get("configuration"), list):
                    value["configuration"] = dict(value["configuration"])
                if kind == "add" and isinstance(value.get("partitionValues"), list):
                    value["partitionValues"] = dict(value["partitionValues"])
                actions.append({kind: value})
    return actions


def _file_path(action: dict[str, Any], where: str) -> str:
    raw = action.get("path")
    if not isinstance(raw, str) or not raw:
        raise DataError(f"{where}: a log action has no file path", path=where)
    if "://" in raw or raw.startswith("/"):
        raise DataError(
            f"{where}: file {raw} lies outside the table folder (a shallow clone?); keel "
            "reads only files under the table",
            path=where,
        )
    path = unquote(raw)
    if ".." in path.split("/"):
        raise DataError(f"{where}: file {raw} lies outside the table folder", path=where)
    return path


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]
