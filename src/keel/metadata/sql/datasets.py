"""Dataset versions in SQL (the `datasets` aggregate): a row per version, its columns, its files."""

from __future__ import annotations

import builtins
import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, Select, func, insert, select

from keel.domain.dataset import (
    DatasetVersion,
    LeftOutColumn,
    SourceFile,
    TimeRange,
    parse_dataset_ref,
)
from keel.domain.digest import Digest
from keel.errors import ConfigError, Conflict, NotFound
from keel.metadata.base import DatasetVersions
from keel.metadata.sql.engine import read_transaction, write_transaction
from keel.metadata.sql.schema import (
    artifact_holders,
    dataset_columns,
    dataset_files,
    datasets,
)
from keel.metadata.sql.statements import insert_ignoring_duplicates, lock_artifact

__all__ = ["SqlDatasetVersions"]

#: How many candidates an ambiguous prefix lists before "and more".
_CANDIDATES_SHOWN: Final = 10


class SqlDatasetVersions(DatasetVersions):
    """`DatasetVersions` on SQLite or PostgreSQL.

    Race safety: the version row is inserted with `ON CONFLICT DO NOTHING`, so two
    processes recording the same content both succeed and the first record stands; only
    the insert that created the row writes its columns, files and holders. The objects'
    artifact rows are locked first (`FOR KEY SHARE` on PostgreSQL, the write lock on
    SQLite), as `SqlArtifactRecords` does, so a concurrent `forget` cannot delete a record
    between the check and the holder that protects it.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, version: DatasetVersion) -> DatasetVersion:
        """Record the version and hold its objects; the earlier record if the id exists."""
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            for digest in sorted({version.data, version.profile}):
                if not lock_artifact(conn, digest):
                    raise NotFound(
                        f"cannot record dataset {version.short}: its object {digest} "
                        "is not recorded as an artifact",
                        hint="record the data (Parquet or manifest) and profile objects "
                        "before the version",
                    )
            # RETURNING, not rowcount: drivers disagree on rowcount for a skipped insert.
            insert_row = insert_ignoring_duplicates(conn, datasets, _row_of(version), "id")
            created = conn.execute(insert_row.returning(datasets.c.id)).first()
            if created is None:
                existing = _select_versions(conn, select(datasets).where(_is(version.id)))
                return existing[0]
            if version.columns:
                conn.execute(
                    insert(dataset_columns),
                    [
                        {"dataset_id": str(version.id), "position": i, "name": name, "type": kind}
                        for i, (name, kind) in enumerate(version.columns)
                    ],
                )
            if version.files:
                conn.execute(
                    insert(dataset_files),
                    [
                        {
                            "dataset_id": str(version.id),
                            "path": file.path,
                            "size": file.size,
                            "digest": str(file.digest),
                        }
                        for file in version.files
                    ],
                )
            for digest in sorted({version.data, version.profile}):
                holder = {"digest": str(digest), "holder": version.holder, "created_at": now}
                conn.execute(
                    insert_ignoring_duplicates(conn, artifact_holders, holder, "digest", "holder")
                )
        return version

    def get(self, id: Digest) -> DatasetVersion:
        """The version; `NotFound` if it was never recorded."""
        found = self.find(id)
        if found is None:
            raise NotFound(
                f"no dataset version {id} is recorded",
                hint="`keel data list` shows the recorded versions",
            )
        return found

    def find(self, id: Digest) -> DatasetVersion | None:
        """The version, or None if it was never recorded."""
        with read_transaction(self._engine) as conn:
            found = _select_versions(conn, select(datasets).where(_is(id)))
        return found[0] if found else None

    def resolve(self, ref: str) -> DatasetVersion:
        """The version named by `latest`, a full id, or a unique prefix of >= 6 hex."""
        try:
            parsed = parse_dataset_ref(ref)
        except ValueError as exc:
            raise ConfigError(
                str(exc), hint="`keel data list` shows the recorded versions"
            ) from None
        if parsed.kind == "id":
            return self.get(parsed.digest)
        if parsed.kind == "latest":
            query = select(datasets).order_by(datasets.c.created_at.desc(), datasets.c.id.desc())
            with read_transaction(self._engine) as conn:
                newest = _select_versions(conn, query.limit(1))
            if not newest:
                raise NotFound(
                    "no dataset versions are recorded yet",
                    hint="run `keel data snapshot` to record one",
                )
            return newest[0]
        # Ids are lowercase hex and the prefix is validated hex: no LIKE wildcard can slip in.
        query = (
            select(datasets)
            .where(datasets.c.id.startswith(f"blake3:{parsed.value}"))
            .order_by(datasets.c.created_at.desc(), datasets.c.id.desc())
            .limit(_CANDIDATES_SHOWN + 1)
        )
        with read_transaction(self._engine) as conn:
            candidates = _select_versions(conn, query)
        if not candidates:
            raise NotFound(
                f"no dataset version id starts with {parsed.value}",
                hint="`keel data list` shows the recorded versions",
            )
        if len(candidates) > 1:
            shown = ", ".join(
                f"{c.id.hex[:16]} ({c.created_at:%Y-%m-%d %H:%M})"
                for c in candidates[:_CANDIDATES_SHOWN]
            )
            more = " and more" if len(candidates) > _CANDIDATES_SHOWN else ""
            raise Conflict(
                f"{parsed.value} names several dataset versions: {shown}{more}",
                hint="give more characters of the id",
            )
        return candidates[0]

    def list(self, *, limit: int | None = None) -> builtins.list[DatasetVersion]:
        """Versions, newest first."""
        query = select(datasets).order_by(datasets.c.created_at.desc(), datasets.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with read_transaction(self._engine) as conn:
            return _select_versions(conn, query)

    def count(self) -> int:
        """How many versions are recorded."""
        with read_transaction(self._engine) as conn:
            return conn.execute(select(func.count()).select_from(datasets)).scalar_one()


def _is(id: Digest) -> Any:
    return datasets.c.id == str(id)


def _row_of(version: DatasetVersion) -> dict[str, Any]:
    time_range = version.time_range
    return {
        "id": str(version.id),
        "source": version.source,
        "query": version.query,
        "format": version.format,
        "row_count": version.rows,
        "timestamp_column": None if time_range is None else time_range.column,
        "time_start": None if time_range is None else time_range.start,
        "time_end": None if time_range is None else time_range.end,
        # One column for the stored data object, so its foreign key guards either kind.
        "parquet": str(version.data),
        "storage": None if version.manifest is None else "manifest",
        "profile": str(version.profile),
        "created_at": version.created_at,
        "created_by": version.created_by,
        "left_out": json.dumps([c.to_dict() for c in version.left_out])
        if version.left_out
        else None,
    }


def _select_versions(conn: Connection, query: Select[Any]) -> builtins.list[DatasetVersion]:
    """Run a query over `datasets` and assemble whole versions, in the query's order."""
    rows = builtins.list(conn.execute(query))
    if not rows:
        return []
    ids = [row.id for row in rows]
    columns: dict[str, builtins.list[tuple[str, str]]] = defaultdict(builtins.list)
    for row in conn.execute(
        select(dataset_columns)
        .where(dataset_columns.c.dataset_id.in_(ids))
        .order_by(dataset_columns.c.dataset_id, dataset_columns.c.position)
    ):
        columns[row.dataset_id].append((row.name, row.type))
    files: dict[str, builtins.list[SourceFile]] = defaultdict(builtins.list)
    for row in conn.execute(
        select(dataset_files)
        .where(dataset_files.c.dataset_id.in_(ids))
        .order_by(dataset_files.c.dataset_id, dataset_files.c.path)
    ):
        files[row.dataset_id].append(
            SourceFile(path=row.path, size=row.size, digest=Digest.parse(row.digest))
        )
    return [_to_version(row, columns[row.id], files[row.id]) for row in rows]


def _to_version(
    row: Row[Any], columns: Sequence[tuple[str, str]], files: Sequence[SourceFile]
) -> DatasetVersion:
    time_range = None
    if row.timestamp_column is not None and row.time_start is not None:
        time_range = TimeRange(row.timestamp_column, row.time_start, row.time_end)
    manifest = row.storage == "manifest"
    return DatasetVersion(
        id=Digest.parse(row.id),
        source=row.source,
        query=row.query,
        format=row.format,
        rows=row.row_count,
        columns=tuple(columns),
        time_range=time_range,
        parquet=None if manifest else Digest.parse(row.parquet),
        manifest=Digest.parse(row.parquet) if manifest else None,
        profile=Digest.parse(row.profile),
        created_at=row.created_at,
        created_by=row.created_by,
        files=tuple(files),
        left_out=tuple(
            LeftOutColumn(int(c["position"]), str(c["name"]), str(c["reason"]))
            for c in json.loads(row.left_out or "[]")
        ),
    )
