"""Artifact records and their holders, in SQL (the `artifacts` aggregate)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, Table, delete, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from keel.domain.digest import Digest
from keel.errors import Conflict, IntegrityError, NotFound
from keel.metadata.base import ArtifactRecord, ArtifactRecords
from keel.metadata.sql.engine import read_transaction, write_transaction
from keel.metadata.sql.schema import artifact_holders, artifacts

__all__ = ["SqlArtifactRecords"]

#: Digests per statement in `forget`, well under both backends' bound-parameter limits.
_FORGET_BATCH: Final = 500

#: `record` retries when a concurrent `forget` deletes the row between its two statements;
#: each retry needs a new concurrent forget of the same digest, so a few always suffice.
_RECORD_ATTEMPTS: Final = 5


class SqlArtifactRecords(ArtifactRecords):
    """`ArtifactRecords` on SQLite or PostgreSQL.

    Race safety: inserts ignore duplicates (`ON CONFLICT DO NOTHING`), and every statement
    that adds a holder first locks the artifact row against deletion (`FOR KEY SHARE` on
    PostgreSQL; SQLite serialises writers with `BEGIN IMMEDIATE`), while `forget` locks
    the rows it may delete (`FOR UPDATE`) before checking for holders. So a holder added
    by one process and a `forget` by another never leave a holder without its record.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(
        self,
        digest: Digest,
        *,
        size: int,
        media_type: str,
        actor: str,
        holder: str | None = None,
    ) -> ArtifactRecord:
        """Record an object (idempotent) and, if given, a holder, in one transaction.

        Recording a known digest again keeps the first record (its time, actor and media
        type). A different size for the same digest is an `IntegrityError`: the bytes
        behind a content hash cannot change.
        """
        if size < 0:
            raise ValueError(f"size must be zero or more, got {size}")
        _check_holder(holder)
        now = datetime.now(UTC)
        values = {
            "digest": str(digest),
            "size": size,
            "media_type": media_type,
            "created_at": now,
            "created_by": actor,
        }
        for _ in range(_RECORD_ATTEMPTS):
            with write_transaction(self._engine) as conn:
                conn.execute(_insert_ignoring_duplicates(conn, artifacts, values, "digest"))
                row = _lock_row(conn, digest)
                if row is None:
                    continue  # a concurrent forget deleted it after our insert; again
                if row.size != size:
                    raise IntegrityError(
                        f"artifact {digest} is recorded with size {row.size}, not {size}",
                        hint="the bytes behind a digest cannot change; check the object store",
                    )
                if holder is not None:
                    conn.execute(_add_holder(conn, digest, holder, now))
                return _to_record(row)
        raise Conflict(f"artifact {digest} kept being forgotten while it was recorded; try again")

    def get(self, digest: Digest) -> ArtifactRecord:
        """The record; `NotFound` if the object was never recorded."""
        found = self.find(digest)
        if found is None:
            raise NotFound(f"no artifact {digest} is recorded")
        return found

    def find(self, digest: Digest) -> ArtifactRecord | None:
        """The record, or None if the object was never recorded."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(artifacts).where(artifacts.c.digest == str(digest))).first()
        return None if row is None else _to_record(row)

    def list(self, *, limit: int | None = None) -> builtins.list[ArtifactRecord]:
        """Records in the order they were made, oldest first."""
        query = select(artifacts).order_by(artifacts.c.created_at, artifacts.c.digest)
        if limit is not None:
            query = query.limit(limit)
        with read_transaction(self._engine) as conn:
            return [_to_record(row) for row in conn.execute(query)]

    def count(self) -> int:
        """How many objects are recorded."""
        with read_transaction(self._engine) as conn:
            return conn.execute(select(func.count()).select_from(artifacts)).scalar_one()

    def add_holder(self, digest: Digest, holder: str) -> None:
        """Reference a recorded object (idempotent); `NotFound` if it was never recorded."""
        _check_holder(holder)
        with write_transaction(self._engine) as conn:
            if _lock_row(conn, digest) is None:
                raise NotFound(
                    f"cannot hold artifact {digest}: it is not recorded",
                    hint="record the object before referencing it",
                )
            conn.execute(_add_holder(conn, digest, holder, datetime.now(UTC)))

    def remove_holder(self, digest: Digest, holder: str) -> None:
        """Drop one reference; nothing happens if it was not there."""
        with write_transaction(self._engine) as conn:
            conn.execute(
                delete(artifact_holders).where(
                    artifact_holders.c.digest == str(digest),
                    artifact_holders.c.holder == holder,
                )
            )

    def holders(self, digest: Digest) -> builtins.list[str]:
        """The holders of an object, sorted; empty if none (or never recorded)."""
        query = (
            select(artifact_holders.c.holder)
            .where(artifact_holders.c.digest == str(digest))
            .order_by(artifact_holders.c.holder)
        )
        with read_transaction(self._engine) as conn:
            return builtins.list(conn.scalars(query))

    def referenced(self) -> set[Digest]:
        """Every digest with at least one holder: the roots garbage collection keeps."""
        with read_transaction(self._engine) as conn:
            texts = conn.scalars(select(artifact_holders.c.digest).distinct())
            return {Digest.parse(text) for text in texts}

    def forget(self, digests: Iterable[Digest]) -> int:
        """Delete records that have no holder; returns how many went.

        Held and unknown digests are skipped, not errors.
        """
        wanted = sorted({str(digest) for digest in digests})
        forgotten = 0
        for start in range(0, len(wanted), _FORGET_BATCH):
            batch = wanted[start : start + _FORGET_BATCH]
            with write_transaction(self._engine) as conn:
                # Lock first, then look for holders in a later statement (a fresh snapshot
                # on PostgreSQL): a holder added concurrently either committed before the
                # lock and is seen, or waits for us. Only the locked rows may go: a row
                # recorded after the lock could be gaining a holder right now.
                locked = builtins.list(
                    conn.scalars(
                        select(artifacts.c.digest)
                        .where(artifacts.c.digest.in_(batch))
                        .order_by(artifacts.c.digest)
                        .with_for_update()
                    )
                )
                if not locked:
                    continue
                unheld = ~exists().where(artifact_holders.c.digest == artifacts.c.digest)
                result = conn.execute(
                    delete(artifacts).where(artifacts.c.digest.in_(locked), unheld)
                )
                forgotten += result.rowcount
        return forgotten


def _check_holder(holder: str | None) -> None:
    if holder is not None and not holder.strip():
        raise ValueError("holder must be a non-empty name, e.g. 'dataset:3f2a...'")


def _lock_row(conn: Connection, digest: Digest) -> Row[Any] | None:
    # FOR KEY SHARE keeps the row from being deleted until we commit, without
    # blocking other holders; SQLite ignores the clause (its writers are serialised).
    query = (
        select(artifacts)
        .where(artifacts.c.digest == str(digest))
        .with_for_update(read=True, key_share=True)
    )
    return conn.execute(query).first()


def _add_holder(conn: Connection, digest: Digest, holder: str, now: datetime) -> Executable:
    values = {"digest": str(digest), "holder": holder, "created_at": now}
    return _insert_ignoring_duplicates(conn, artifact_holders, values, "digest", "holder")


def _insert_ignoring_duplicates(
    conn: Connection, table: Table, values: Mapping[str, Any], *key: str
) -> Executable:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).values(values).on_conflict_do_nothing(index_elements=key)
    return sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=key)


def _to_record(row: Row[Any]) -> ArtifactRecord:
    return ArtifactRecord(
        digest=Digest.parse(row.digest),
        size=row.size,
        media_type=row.media_type,
        created_at=row.created_at,
        created_by=row.created_by,
    )
