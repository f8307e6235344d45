"""Snapshots: turn the configured data source into an immutable, content-addressed dataset version.

    result = snapshot(project)            # keel.yaml's data.source
    result.version.id, result.reused      # blake3:..., True if that content was recorded before
    table = load_table(project, "latest")

The version id is BLAKE3 over a canonical JSON description of the content:

    {"kind": "keel/dataset-id", "version": 1, "format": <data.format>,
     "timestamp": <data.timestamp or null>,
     "files": [[<name relative to the source>, <file digest>], ...]}       (file sources)
     "result": <digest of the Arrow IPC stream of the query result>         (SQL sources)
     "manifest": {"location", "table", "delta_version", "partition_types",
                  "files": [[<name>, <size>, <identity>, <partition values>], ...]}
                                                                   (lake tables, --manifest)

So the same bytes under the same names, read the same way, are the same version wherever they
sit; file digests come from the stat cache, so unchanged files are never read again. The source
location and the query text are recorded but are not part of the id.

A manifest version (`snapshot(..., manifest=True)`, keel.yaml `data.snapshot: manifest`)
copies nothing: it records the files of a lake table where they are (`keel.data.manifest`),
and its id covers their location too, because reading it back reads them there. Changing
one file makes a new version; an unchanged table is the version recorded before.
`load_table` checks every file against the manifest before reading any.

A new version is read with `keel.data.read_data` (a row index pandas wrote is left out, and
recorded with the version as `left_out`), written as Parquet (zstd), profiled, and both
objects are stored before the version is recorded (for a manifest version: the manifest
document and the profile, exact up to `keel.data.manifest.EXACT_PROFILE_BYTES` of Parquet,
above that built file by file from mergeable sketches, `keel.data.scan`; or by the `scan`
the caller passes, as the Spark engine's, which shares the files out among its tasks).
The record and the holders that keep the objects alive are written in one transaction, so a
failure part-way leaves no version and only unheld objects that `keel artifacts gc` reclaims.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

from keel.artifacts.hashing import hash_bytes
from keel.contracts.columns import split_index_columns
from keel.data.read import Format, read_data, resolve_source
from keel.data.sql import ipc_digest, run_query, sqlite_absolute
from keel.data.statcache import StatCache, StatKey
from keel.data.stored import as_stored, typed_timestamps
from keel.domain.dataset import DatasetVersion, LeftOutColumn, Manifest, SourceFile
from keel.domain.digest import Digest
from keel.errors import ConfigError, Conflict, DataError, StoreError
from keel.spec import SqlSource
from keel.stats.profile import Profile, profile_table

if TYPE_CHECKING:
    from keel.data.scan import ManifestScan
    from keel.workspace import Workspace

__all__ = [
    "ID_KIND",
    "ID_VERSION",
    "PARQUET_MEDIA_TYPE",
    "PROFILE_MEDIA_TYPE",
    "SnapshotResult",
    "dataset_id",
    "load_manifest",
    "load_profile",
    "load_table",
    "snapshot",
    "snapshots_manifest",
]

ID_KIND: Final = "keel/dataset-id"
#: Bumped only if the description changes; old ids stay what they were.
ID_VERSION: Final = 1
PARQUET_MEDIA_TYPE: Final = "application/vnd.apache.parquet"
PROFILE_MEDIA_TYPE: Final = "application/vnd.keel.profile+json"


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    """The version, whether it was recorded before this call, and how many files were hashed;
    for a manifest version, its manifest."""

    version: DatasetVersion
    reused: bool
    files_read: int
    manifest: Manifest | None = None


def dataset_id(
    *,
    format: str,
    timestamp: str | None,
    files: Sequence[tuple[str, Digest]] = (),
    result: Digest | None = None,
    manifest: Manifest | None = None,
) -> Digest:
    """The version id: BLAKE3 of the canonical description (see the module docstring)."""
    description: dict[str, Any] = {
        "kind": ID_KIND,
        "version": ID_VERSION,
        "format": format,
        "timestamp": timestamp,
    }
    if manifest is not None:
        description["manifest"] = manifest.describe()
    elif result is None:
        description["files"] = [[name, str(digest)] for name, digest in sorted(files)]
    else:
        description["result"] = str(result)
    text = json.dumps(description, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hash_bytes(text.encode("utf-8"))


def snapshot(
    project: Workspace,
    source: str | SqlSource | None = None,
    *,
    manifest: bool | None = None,
    delta_version: int | None = None,
    scan: ManifestScan | None = None,
) -> SnapshotResult:
    """Snapshot `source` (default: keel.yaml's `data.source`) into a dataset version.

    A relative `source` is taken from the current folder; keel.yaml's from the project folder.
    `manifest` records the files where they are instead of a copy (default: keel.yaml's
    `data.snapshot`); `delta_version` picks a version of a Delta table (manifest only).
    `scan` turns a new manifest version's files into its profile (default: in this
    process, `keel.data.manifest.scan_manifest`; an engine's for Spark).
    Raises ConfigError without a source, DataError for data that cannot be read.
    """
    spec = project.spec.data
    manifest = snapshots_manifest(project, manifest)
    if delta_version is not None and not manifest:
        raise ConfigError(
            "a Delta table version is read only into a manifest version",
            problems=[("delta_version", "needs --manifest (or data.snapshot: manifest)")],
        )
    if delta_version is not None and delta_version < 0:
        raise ConfigError(
            f"Delta table version {delta_version} is below 0",
            problems=[("delta_version", "a Delta table version is 0 or more")],
        )
    if source is None:
        if spec is None:
            raise ConfigError(
                "no data to snapshot: keel.yaml has no data section and no SOURCE was given",
                hint="pass a file, glob or folder (keel data snapshot data/flights.csv), "
                "or set data.source in keel.yaml",
            )
        source = spec.source
        base = project.settings.project_dir
    else:
        base = Path.cwd()
    format = spec.format if spec is not None else "auto"
    timestamp = spec.timestamp if spec is not None else None
    if isinstance(source, SqlSource):
        if manifest:
            raise ConfigError(
                "a SQL source cannot be snapshotted as a manifest: a query result has no files",
                problems=[("data.snapshot", "use copy for a SQL source")],
            )
        return _snapshot_sql(project, sqlite_absolute(source, base), timestamp)
    if manifest:
        if format == "csv":
            raise ConfigError(
                "data.format is csv, and a manifest version covers Parquet files or a Delta table",
                problems=[("data.snapshot", "manifest needs Parquet files or a Delta table")],
            )
        location = source if "://" in source else _absolute(source, base)
        return _snapshot_manifest(project, location, timestamp, delta_version, scan)
    return _snapshot_files(project, _absolute(source, base), format, timestamp)


def snapshots_manifest(project: Workspace, manifest: bool | None) -> bool:
    """Whether a snapshot records a manifest: `manifest`, else keel.yaml's data.snapshot."""
    if manifest is not None:
        return manifest
    spec = project.spec.data
    return spec is not None and spec.snapshot == "manifest"


def load_table(project: Workspace, ref: str | Digest) -> pa.Table:
    """The data of a dataset version (`latest`, an id or a unique prefix), verified by hash.

    A manifest version's files are checked against the manifest (size and identity) before
    any is read: DataError naming the first file that changed."""
    datasets = project.metadata.datasets
    version = datasets.get(ref) if isinstance(ref, Digest) else datasets.resolve(ref)
    if version.manifest is not None:
        return _load_manifest_table(project, version)
    assert version.parquet is not None
    with _temp_file(project, ".parquet") as path:
        project.artifacts.get_file(version.parquet, path)
        table = pq.read_table(str(path))
    if any(not name.strip() for name in table.column_names):
        # Recorded before keel left row indexes out: the same rule applies on the way out.
        table, _ = split_index_columns(table, f"dataset {version.short}")
    return table


def load_manifest(project: Workspace, version: DatasetVersion) -> Manifest | None:
    """The manifest of a manifest version, verified by hash; None for a copy."""
    if version.manifest is None:
        return None
    document = project.artifacts.read_bytes(version.manifest)
    try:
        return Manifest.from_dict(json.loads(document))
    except ValueError as exc:
        raise StoreError(
            f"the manifest of dataset {version.short} cannot be read: {exc}",
            hint="a newer keel may have written it; upgrade keelml",
        ) from None


def load_profile(project: Workspace, version: DatasetVersion) -> Profile:
    """The statistics profile of a version, verified by hash."""
    try:
        return Profile.from_json(project.artifacts.read_bytes(version.profile))
    except ValueError as exc:
        raise StoreError(
            f"the profile of dataset {version.short} cannot be read: {exc}",
            hint="a newer keel may have written it; upgrade keelml",
        ) from None


# --- file sources ----------------------------------------------------------------------------


def _snapshot_files(
    project: Workspace, source: str, format: Format, timestamp: str | None
) -> SnapshotResult:
    paths = resolve_source(source)
    names = _relative_names(source, paths)
    keys: list[StatKey] = []
    digests: list[Digest] = []
    with StatCache(project.settings.state_dir / "cache" / "stat.db") as cache:
        for path in paths:
            try:
                keys.append(StatKey.of(path))
                digests.append(cache.digest(path, keys[-1]))
            except OSError as exc:
                # Gone or locked since the source was resolved: name the file, no traceback.
                reason = exc.strerror or type(exc).__name__
                raise DataError(f"{path}: cannot read: {reason}", path=path) from None
        files_read = cache.misses
    files = tuple(
        sorted(
            SourceFile(path=name, size=key.size, digest=digest)
            for name, key, digest in zip(names, keys, digests, strict=True)
        )
    )
    version_id = dataset_id(
        format=format, timestamp=timestamp, files=[(f.path, f.digest) for f in files]
    )
    existing = project.metadata.datasets.find(version_id)
    if existing is not None:
        return SnapshotResult(existing, reused=True, files_read=files_read)
    read = read_data(source, format=format)
    # What was read must be what was hashed, or the id would name other content.
    if resolve_source(source) != paths or [StatKey.of(p) for p in paths] != keys:
        raise Conflict(
            f"{source}: files changed while they were being snapshotted",
            hint="run the snapshot again once the data has stopped changing",
        )
    return _record(
        project,
        read.table,
        version_id=version_id,
        source=source,
        format=_format_of(paths, format),
        timestamp=timestamp,
        files=files,
        files_read=files_read,
        left_out=read.left_out,
    )


def _absolute(source: str, base: Path) -> str:
    path = Path(source).expanduser()
    return str(path if path.is_absolute() else base / path)


def _relative_names(source: str, paths: list[Path]) -> list[str]:
    """Names that identify each file within the source, independent of where it sits."""
    root = Path(source)
    if root.is_dir():
        return [p.relative_to(root).as_posix() for p in paths]
    if root.exists():
        return [root.name]
    # A glob: names relative to its longest folder without wildcards.
    fixed = list(_leading_fixed_parts(root.parts))
    base = Path(*fixed) if fixed else Path()
    return [Path(os.path.relpath(p, base)).as_posix() for p in paths]


def _leading_fixed_parts(parts: tuple[str, ...]) -> Iterator[str]:
    for part in parts[:-1]:
        if glob.has_magic(part):
            return
        yield part


def _format_of(paths: list[Path], format: str) -> str:
    if format != "auto":
        return format
    found = set()
    for path in paths:
        name = path.name.lower()
        if name.endswith((".parquet", ".pq", ".parq")):
            found.add("parquet")
        elif ".csv" in name:
            found.add("csv")
        else:
            with path.open("rb") as handle:
                found.add("parquet" if handle.read(4) == b"PAR1" else "csv")
    return "+".join(sorted(found))


# --- lake tables (manifests) -------------------------------------------------------------------


def _snapshot_manifest(
    project: Workspace,
    source: str,
    timestamp: str | None,
    delta_version: int | None,
    scan: ManifestScan | None,
) -> SnapshotResult:
    from keel.data.manifest import (
        MANIFEST_MEDIA_TYPE,
        build_manifest,
        check_manifest,
        scan_manifest,
    )

    manifest, where = build_manifest(source, stat_db=_stat_db(project), delta_version=delta_version)
    with contextlib.closing(where):
        files_read = where.files_hashed
        version_id = dataset_id(format=manifest.table, timestamp=timestamp, manifest=manifest)
        existing = project.metadata.datasets.find(version_id)
        if existing is not None:
            return SnapshotResult(existing, reused=True, files_read=files_read, manifest=manifest)
        scanned = (scan or scan_manifest)(where, manifest, timestamp)
        # What was read must be what the manifest names, or the profile would describe
        # other data than the id.
        try:
            check_manifest(where, manifest, version=version_id.short)
        except DataError:
            raise Conflict(
                f"{manifest.location}: files changed while they were being snapshotted",
                hint="run the snapshot again once the data has stopped changing",
            ) from None
    actor = project.settings.user
    document = json.dumps(manifest.to_dict(), sort_keys=True, separators=(",", ":"))
    stored = project.artifacts.put_bytes(document.encode("utf-8"))
    project.metadata.artifacts.record(
        stored.digest, size=stored.size, media_type=MANIFEST_MEDIA_TYPE, actor=actor
    )
    stored_profile = _store_profile(project, scanned.profile)
    version = DatasetVersion(
        id=version_id,
        source=manifest.location,
        format=manifest.table,
        rows=scanned.profile.rows,
        columns=scanned.columns,
        time_range=scanned.time_range,
        parquet=None,
        manifest=stored.digest,
        profile=stored_profile,
        created_at=datetime.now(UTC),
        created_by=actor,
        left_out=scanned.left_out,
    )
    recorded = project.metadata.datasets.add(version)
    return SnapshotResult(
        recorded, reused=recorded != version, files_read=files_read, manifest=manifest
    )


def _load_manifest_table(project: Workspace, version: DatasetVersion) -> pa.Table:
    from keel.data.lake import location
    from keel.data.manifest import check_manifest, read_manifest

    manifest = load_manifest(project, version)
    assert manifest is not None
    with contextlib.closing(location(manifest.location, stat_db=_stat_db(project))) as where:
        check_manifest(where, manifest, version=version.short)
        table = read_manifest(where, manifest).table
    # What the snapshot recorded (a text timestamp column parsed, Parquet's own types).
    column = None if version.time_range is None else version.time_range.column
    return as_stored(typed_timestamps(table, column, version.source)[0])


def _stat_db(project: Workspace) -> Path:
    return project.settings.state_dir / "cache" / "stat.db"


# --- SQL sources -----------------------------------------------------------------------------


def _snapshot_sql(project: Workspace, source: SqlSource, timestamp: str | None) -> SnapshotResult:
    from keel.metadata import redact_url

    table, left_out = split_index_columns(run_query(source), "data.source.query")
    version_id = dataset_id(format="sql", timestamp=timestamp, result=ipc_digest(table))
    existing = project.metadata.datasets.find(version_id)
    if existing is not None:
        return SnapshotResult(existing, reused=True, files_read=0)
    return _record(
        project,
        table,
        version_id=version_id,
        source=redact_url(source.url),
        format="sql",
        timestamp=timestamp,
        query=source.query,
        left_out=left_out,
    )


# --- recording -------------------------------------------------------------------------------


def _record(
    project: Workspace,
    table: pa.Table,
    *,
    version_id: Digest,
    source: str,
    format: str,
    timestamp: str | None,
    files: tuple[SourceFile, ...] = (),
    files_read: int = 0,
    query: str | None = None,
    left_out: tuple[LeftOutColumn, ...] = (),
) -> SnapshotResult:
    table, time_range = typed_timestamps(table, timestamp, source)
    table = as_stored(table)
    actor = project.settings.user
    # Profiling and writing Parquet are both Arrow C++ work that releases the GIL: side by
    # side they take little more than the slower of the two.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="keel-profile") as pool:
        profiling = pool.submit(profile_table, table)
        with _temp_file(project, ".parquet") as path:
            pq.write_table(table, str(path), compression="zstd")
            parquet = project.artifacts.put_file(path)
        profile = profiling.result()
    project.metadata.artifacts.record(
        parquet.digest, size=parquet.size, media_type=PARQUET_MEDIA_TYPE, actor=actor
    )
    stored_profile = _store_profile(project, profile)
    version = DatasetVersion(
        id=version_id,
        source=source,
        query=query,
        format=format,
        rows=table.num_rows,
        columns=tuple((f.name, str(f.type)) for f in table.schema),
        time_range=time_range,
        parquet=parquet.digest,
        profile=stored_profile,
        created_at=datetime.now(UTC),
        created_by=actor,
        files=files,
        left_out=left_out,
    )
    recorded = project.metadata.datasets.add(version)
    # Another process may have recorded the same content while we converted it.
    return SnapshotResult(recorded, reused=recorded != version, files_read=files_read)


def _store_profile(project: Workspace, profile: Profile) -> Digest:
    stored = project.artifacts.put_bytes(profile.to_json())
    project.metadata.artifacts.record(
        stored.digest, size=stored.size, media_type=PROFILE_MEDIA_TYPE, actor=project.settings.user
    )
    return stored.digest


@contextmanager
def _temp_file(project: Workspace, suffix: str) -> Iterator[Path]:
    folder = project.settings.state_dir / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="dataset-", suffix=suffix, dir=folder)
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
