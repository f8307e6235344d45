"""Statements every aggregate needs, written once for both SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from keel.domain.digest import Digest
from keel.metadata.sql.schema import artifacts

__all__ = ["insert_ignoring_duplicates", "lock_artifact"]


def insert_ignoring_duplicates(
    conn: Connection, table: Table, values: Mapping[str, Any], *key: str
) -> postgresql.Insert | sqlite.Insert:
    """`INSERT ... ON CONFLICT (key) DO NOTHING`: idempotent and race-safe on both backends."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).values(values).on_conflict_do_nothing(index_elements=key)
    return sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=key)


def lock_artifact(conn: Connection, digest: Digest) -> bool:
    """Keep an artifact record from being forgotten until the transaction commits.

    FOR KEY SHARE does so without blocking other holders; SQLite ignores the clause (its
    writers are serialised by BEGIN IMMEDIATE). False if the artifact is not recorded.
    """
    query = (
        select(artifacts.c.digest)
        .where(artifacts.c.digest == str(digest))
        .with_for_update(read=True, key_share=True)
    )
    return conn.execute(query).first() is not None
