"""Opening, migrating and checking the metadata store, on every backend."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from keel.errors import StoreError
from keel.metadata import SqlMetadataStore, open_metadata_store
from keel.metadata.sql.engine import create_metadata_engine
from keel.metadata.sql.migrations import script_directory
from keel.metadata.sql.schema import metadata

HEAD = script_directory().get_current_head()
FUTURE = "9999_from_the_future"


def _set_revision(url: str, revision: str) -> None:
    engine = create_metadata_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


def test_a_fresh_database_is_migrated_to_head(metadata_url: str) -> None:
    with SqlMetadataStore(metadata_url) as store:
        before = store.revision()
        assert before.current is None
        assert not before.up_to_date
    with open_metadata_store(metadata_url) as store:
        after = store.revision()
    assert after.current == HEAD == after.head
    assert after.up_to_date


def test_upgrade_is_idempotent(store: SqlMetadataStore) -> None:
    first = store.upgrade()
    second = store.upgrade()
    assert first == second == store.revision()
    assert second.up_to_date


def test_open_without_upgrade_leaves_an_empty_database_empty(metadata_url: str) -> None:
    with open_metadata_store(metadata_url, upgrade=False) as store:
        assert store.revision().current is None
        health = store.health()
    assert not health.ok
    assert "none (empty database)" in health.detail


def test_migrations_produce_exactly_the_tables_of_schema_py(
    metadata_url: str, store: SqlMetadataStore
) -> None:
    engine = create_metadata_engine(metadata_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert diffs == []


def test_a_database_from_a_newer_keel_is_refused(metadata_url: str) -> None:
    open_metadata_store(metadata_url).close()
    _set_revision(metadata_url, FUTURE)
    for upgrade in (True, False):
        with pytest.raises(StoreError) as caught:
            open_metadata_store(metadata_url, upgrade=upgrade)
        assert FUTURE in caught.value.message
        assert "upgrade keelml" in caught.value.message
    with SqlMetadataStore(metadata_url) as store:
        assert store.revision().current == FUTURE
        health = store.health()
    assert not health.ok
    assert FUTURE in health.detail


def test_health_is_a_round_trip_at_head(store: SqlMetadataStore) -> None:
    health = store.health()
    assert health.ok, health.detail
    assert health.kind == "metadata"
    assert health.backend == store.backend
    assert health.url == store.url
    assert str(HEAD) in health.detail
    assert 0 < health.latency_ms < 5_000


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_postgresql_is_a_clear_store_error() -> None:
    port = _closed_port()
    url = f"postgresql://keel:s3cret@127.0.0.1:{port}/keel"
    with pytest.raises(StoreError) as caught:
        open_metadata_store(url)
    message = caught.value.message
    assert f"127.0.0.1:{port}" in message
    assert "'keel'" in message
    assert "s3cret" not in message
    assert caught.value.hint

    with SqlMetadataStore(url) as store:
        health = store.health()
    assert not health.ok
    assert f"127.0.0.1:{port}" in health.detail
    assert "s3cret" not in health.detail
    assert "s3cret" not in health.url


def test_an_unusable_sqlite_path_is_a_clear_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError) as caught:
        open_metadata_store(f"sqlite:///{blocker}/keel/metadata.db")
    assert str(blocker) in caught.value.message
    assert caught.value.hint


def test_a_file_that_is_not_a_database_is_a_clear_store_error(tmp_path: Path) -> None:
    path = tmp_path / "metadata.db"
    path.write_bytes(b"this is not an SQLite database, just some bytes" * 100)
    with pytest.raises(StoreError) as caught:
        open_metadata_store(f"sqlite:///{path}")
    assert str(path) in caught.value.message


def test_reads_do_not_wait_for_a_writer(metadata_url: str, store: SqlMetadataStore) -> None:
    writer = create_metadata_engine(metadata_url)
    try:
        with writer.begin() as conn:
            conn.execute(text("DELETE FROM artifact_holders"))  # holds the write lock
            started = time.perf_counter()
            assert store.artifacts.list() == []
            assert store.health().ok
            assert time.perf_counter() - started < 5
    finally:
        writer.dispose()
