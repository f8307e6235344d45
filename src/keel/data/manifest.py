"""Manifests of lake tables: the files of a version, recorded where they are instead of copied.

    manifest, where = build_manifest("s3://lake/flights/", stat_db=...)
    check_manifest(where, manifest, version="4c1f0e9a2b7d")    # DataError if a file changed
    table = read_manifest(where, manifest)

A source is a local folder or glob of Parquet files, an `s3://bucket/prefix` of Parquet files,
or a Delta table (a folder, local or in S3, with a `_delta_log/`): then the files of its newest
version, or of the version asked for (`keel.data.delta`). Every file is listed with its size
and identity (`keel.data.lake`: BLAKE3 for local files, the ETag for S3 objects).

Reading back reads exactly the manifest's files, one at a time, after checking every one of
them: a file missing, of another size or with another identity is a `DataError` naming the
file, the version and what changed, before anything is read.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

from keel.contracts.columns import split_index_columns
from keel.data.delta import LOG_FOLDER, arrow_type, is_delta, read_delta_log
from keel.data.lake import LakeFile, Location, is_hidden, is_parquet_name, location
from keel.data.read import ReadResult, combine_tables, resolve_source
from keel.data.scan import Scanned, ScanPart
from keel.data.stored import as_stored, typed_timestamps
from keel.domain.dataset import LeftOutColumn, Manifest, ManifestFile
from keel.errors import DataError
from keel.stats.profile import profile_table

__all__ = [
    "EXACT_PROFILE_BYTES",
    "MANIFEST_MEDIA_TYPE",
    "Scanned",
    "build_manifest",
    "check_manifest",
    "read_files",
    "read_manifest",
    "scan_files",
    "scan_manifest",
]

MANIFEST_MEDIA_TYPE: Final = "application/vnd.keel.dataset-manifest+json"
#: Up to this many bytes of Parquet, a manifest version's files are combined in memory and
#: profiled exactly, as a copy is; above, they are read one at a time into mergeable
#: sketches (`keel.data.profiling`), so memory holds one file whatever the table's size.
EXACT_PROFILE_BYTES: Final = 256 * 1024 * 1024
_CSV_SUFFIXES: Final = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst")


def build_manifest(
    source: str, *, stat_db: Path, delta_version: int | None = None
) -> tuple[Manifest, Location]:
    """The manifest of `source` (an absolute local path or glob, or `s3://...`), and where it is.

    The caller closes the location. `delta_version` asks for that version of a Delta table;
    for anything else it is a `DataError`.
    """
    where, names = _resolve(source, stat_db)
    try:
        if is_delta(where):
            table = read_delta_log(where, version=delta_version)
            if not table.files:
                raise DataError(
                    f"{where.url}: Delta table version {table.version} holds no files",
                    path=where.url,
                )
            listed = where.find([f.path for f in table.files])
            missing = [f.path for f in table.files if f.path not in listed]
            if missing:
                raise DataError(
                    f"{where.url}/{missing[0]}: the Delta log lists this file in version "
                    f"{table.version}, and it is not there",
                    path=missing[0],
                )
            lake_files = [listed[f.path] for f in table.files]
            for expected, found in zip(table.files, lake_files, strict=True):
                if found.size != expected.size:
                    raise DataError(
                        f"{where.url}/{expected.path}: the Delta log says {expected.size} "
                        f"bytes, the file has {found.size}",
                        path=expected.path,
                    )
            identities = where.identities(lake_files)
            files = tuple(
                ManifestFile(f.path, f.size, identity, f.partition)
                for f, identity in zip(table.files, identities, strict=True)
            )
            return (
                Manifest(
                    location=where.url,
                    table="delta",
                    files=files,
                    delta_version=table.version,
                    partition_types=table.partition_types,
                ),
                where,
            )
        if delta_version is not None:
            raise DataError(
                f"{where.url}: not a Delta table (no {LOG_FOLDER}/), so it has no version "
                f"{delta_version}",
                path=where.url,
            )
        parquet = _parquet_files(where, names)
        identities = where.identities(parquet)
        return (
            Manifest(
                location=where.url,
                table="parquet",
                files=tuple(
                    ManifestFile(f.path, f.size, identity)
                    for f, identity in zip(parquet, identities, strict=True)
                ),
            ),
            where,
        )
    except BaseException:
        where.close()
        raise


def check_manifest(where: Location, manifest: Manifest, *, version: str) -> None:
    """Every file of the manifest is still there with its size and identity, or DataError."""
    listed = where.find([f.path for f in manifest.files])
    now = [listed.get(f.path) or LakeFile(f.path, -1) for f in manifest.files]
    problems: list[tuple[ManifestFile, str]] = []
    present: list[tuple[ManifestFile, LakeFile]] = []
    for recorded, found in zip(manifest.files, now, strict=True):
        if found.size < 0:
            problems.append((recorded, "is missing"))
        elif found.size != recorded.size:
            problems.append((recorded, f"changed size: {recorded.size} -> {found.size} bytes"))
        else:
            present.append((recorded, found))
    if not problems and present:
        identities = where.identities([found for _, found in present])
        for (recorded, _), identity in zip(present, identities, strict=True):
            if identity != recorded.identity:
                problems.append((recorded, f"changed content: {recorded.identity} -> {identity}"))
    if problems:
        first, what = problems[0]
        more = f" (and {len(problems) - 1} more file(s))" if len(problems) > 1 else ""
        raise DataError(
            f"dataset {version}: {where.url}/{first.path} {what} since the snapshot{more}; "
            "nothing was read",
            path=f"{where.url}/{first.path}",
            hint="the version names the files as they were; snapshot the table again "
            "(keel data snapshot --manifest) to record its current state",
        )


def read_manifest(where: Location, manifest: Manifest) -> ReadResult:
    """The manifest's files read one at a time and combined (checked by `check_manifest`
    first, by the caller), with Delta partition columns added from the log."""
    tables: list[tuple[str, pa.Table]] = []
    left_out: dict[LeftOutColumn, None] = {}
    for name, table, dropped in read_files(where, manifest):
        left_out.update(dict.fromkeys(dropped))
        tables.append((name, table))
    return ReadResult(combine_tables(tables), tuple(left_out))


def read_files(
    where: Location, manifest: Manifest
) -> Iterator[tuple[str, pa.Table, tuple[LeftOutColumn, ...]]]:
    """Each file of the manifest in turn: its full name, its table (row index left out,
    Delta partition columns added) and the columns left out, one file in memory at a time."""
    types = {name: arrow_type(kind) for name, kind in manifest.partition_types}
    for file in manifest.files:
        yield _read_file(where, file, types)


def _read_file(
    where: Location, file: ManifestFile, types: dict[str, Any]
) -> tuple[str, pa.Table, tuple[LeftOutColumn, ...]]:
    name = f"{where.url}/{file.path}"
    table, dropped = split_index_columns(where.read_parquet(file.path, file.identity), name)
    for column, text in file.partition:
        values = pa.array([text] * table.num_rows, type=pa.string())
        table = table.append_column(column, _typed(values, types.get(column), name, column))
    return name, table, dropped


def scan_files(
    where: Location, manifest: Manifest, timestamp: str | None, indices: Sequence[int]
) -> ScanPart:
    """The manifest's files at `indices` (ascending) read one at a time into a `ScanPart`:
    the step of a scan every engine runs on its share of the files. The first file that
    cannot be read or added ends the part, its `DataError` kept for `ScanPart.result`."""
    types = {name: arrow_type(kind) for name, kind in manifest.partition_types}
    part = ScanPart(timestamp)
    for index in indices:
        try:
            name, table, dropped = _read_file(where, manifest.files[index], types)
            part.add(index, name, table, dropped)
        except DataError as exc:
            part.fail(index, exc)
            break
        del table
    return part


def file_names(where: Location, manifest: Manifest) -> list[str]:
    """The full names of the manifest's files, as errors and profiles name them."""
    return [f"{where.url}/{file.path}" for file in manifest.files]


def scan_manifest(where: Location, manifest: Manifest, timestamp: str | None) -> Scanned:
    """What a version records of the manifest's data: the files combined and profiled
    exactly up to `EXACT_PROFILE_BYTES`, above that read one at a time into sketches."""
    if manifest.bytes <= EXACT_PROFILE_BYTES:
        return _scan_whole(where, manifest, timestamp)
    return _scan_streamed(where, manifest, timestamp)


def _scan_whole(where: Location, manifest: Manifest, timestamp: str | None) -> Scanned:
    """The files combined in memory and profiled exactly, as a copy is."""
    read = read_manifest(where, manifest)
    table, time_range = typed_timestamps(read.table, timestamp, manifest.location)
    table = as_stored(table)
    return Scanned(
        profile_table(table),
        tuple((f.name, str(f.type)) for f in table.schema),
        time_range,
        read.left_out,
    )


def _scan_streamed(where: Location, manifest: Manifest, timestamp: str | None) -> Scanned:
    """The files read one at a time into mergeable sketches (`keel.data.scan`): memory
    holds one file, whatever the table's size."""
    part = scan_files(where, manifest, timestamp, range(len(manifest.files)))
    return part.result(file_names(where, manifest))


def _typed(values: pa.Array, target: Any, where: str, column: str) -> pa.Array:
    if target is None or pa.types.is_string(target):
        return values
    try:
        if pa.types.is_timestamp(target) and target.tz is not None:
            # Delta writes a timestamp partition value without its zone, which is UTC.
            return values.cast(pa.timestamp(target.unit)).cast(target)
        return values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(
            f"{where}: partition value of column '{column}' is not a {target}: {exc}",
            path=where,
        ) from None


def _resolve(source: str, stat_db: Path) -> tuple[Location, list[str] | None]:
    """The location of `source`, and for a local glob or file, the names it picked."""
    if source.lower().startswith("s3://"):
        return location(source.rstrip("/"), stat_db=stat_db), None
    # One spelling per folder ("data/../lake/t/" is "lake/t"): the location is part of the id.
    path = Path(os.path.normpath(source))
    if path.is_dir():
        return location(str(path), stat_db=stat_db), None
    paths = resolve_source(path)
    if path.exists():
        return location(str(path.parent), stat_db=stat_db), [path.name]
    fixed: list[str] = []
    for part in path.parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    root = Path(*fixed) if fixed else Path.cwd()
    return location(str(root), stat_db=stat_db), [p.relative_to(root).as_posix() for p in paths]


def _parquet_files(where: Location, names: Sequence[str] | None) -> list[LakeFile]:
    if names is None:
        candidates = [f for name, f in where.listing().items() if not is_hidden(name)]
        found = [f for f in candidates if is_parquet_name(f.path)]
        # CSV beside Parquet would be data a copy reads and the manifest leaves out; any
        # other file (a README, Spark's checksums) is not data to either.
        csv = [f.path for f in candidates if f.path.lower().endswith(_CSV_SUFFIXES)]
        if csv:
            raise DataError(
                f"{where.url}: a manifest covers Parquet files; {where.url}/{csv[0]} is CSV",
                path=where.url,
                hint="snapshot CSV files as a copy (without --manifest)",
            )
    else:
        listed = where.find(names)
        found = [listed[name] for name in names if name in listed]
        others = [name for name in names if not is_parquet_name(name)]
        if others:
            raise DataError(
                f"{where.url}/{others[0]}: a manifest covers Parquet files, and this is not "
                "one (.parquet, .pq, .parq)",
                path=others[0],
                hint="snapshot CSV files as a copy (without --manifest)",
            )
    if not found:
        raise DataError(f"{where.url}: no Parquet files found", path=where.url)
    return found
