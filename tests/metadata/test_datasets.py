"""Dataset versions: the same semantics on every backend."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect

from keel.domain.dataset import DatasetVersion, SourceFile, TimeRange
from keel.domain.digest import Digest
from keel.errors import ConfigError, Conflict, NotFound
from keel.metadata import SqlMetadataStore
from keel.metadata.sql.engine import create_metadata_engine
from keel.metadata.sql.migrations import alembic_config
from tests.metadata.helpers import digest_of

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _hex(prefix: str, name: str) -> Digest:
    """A digest starting with `prefix`, distinct per name."""
    tail = digest_of(name).hex
    return Digest.of_hex(prefix + tail[len(prefix) :])


def make_version(
    store: SqlMetadataStore,
    name: str,
    *,
    id: Digest | None = None,
    created_at: datetime = T0,
    created_by: str = "ana",
    files: tuple[SourceFile, ...] | None = None,
    time_range: TimeRange | None = None,
    query: str | None = None,
) -> DatasetVersion:
    """A version whose Parquet and profile objects are recorded, as a snapshot leaves them."""
    parquet, profile = digest_of(f"{name}/parquet"), digest_of(f"{name}/profile")
    for digest in (parquet, profile):
        store.artifacts.record(digest, size=10, media_type="x", actor=created_by)
    if files is None:
        files = (SourceFile("b/part-2.csv", 20, digest_of("f2")), SourceFile("a.csv", 10, C))
    return DatasetVersion(
        id=id or digest_of(f"{name}/id"),
        source=f"/data/{name}",
        query=query,
        format="csv",
        rows=336_776,
        columns=(("time_hour", "timestamp[s, tz=UTC]"), ("distance", "int64"), ("dest", "string")),
        time_range=time_range,
        parquet=parquet,
        profile=profile,
        created_at=created_at,
        created_by=created_by,
        files=files,
    )


C = digest_of("c")


def test_add_then_get_find_list_resolve(store: SqlMetadataStore) -> None:
    span = TimeRange("time_hour", T0 - timedelta(days=365), T0)
    version = make_version(store, "v1", time_range=span)
    assert store.datasets.add(version) == version
    read = store.datasets.get(version.id)
    assert read == version
    assert [f.path for f in read.files] == ["a.csv", "b/part-2.csv"]
    assert read.time_range == span
    assert read.created_at.tzinfo is UTC
    assert store.datasets.find(version.id) == read
    assert store.datasets.list() == [read]
    assert store.datasets.count() == 1
    for ref in (str(version.id), version.id.hex, version.id.hex[:6], version.short, "LATEST"):
        assert store.datasets.resolve(ref) == read


def test_a_sql_version_without_files_or_time_range(store: SqlMetadataStore) -> None:
    version = make_version(store, "sql", files=(), query="SELECT * FROM flights")
    store.datasets.add(version)
    read = store.datasets.get(version.id)
    assert read == version
    assert (read.files, read.time_range, read.query) == ((), None, "SELECT * FROM flights")


def test_add_is_idempotent_and_keeps_the_first_record(store: SqlMetadataStore) -> None:
    first = make_version(store, "v1")
    store.datasets.add(first)
    again = replace(first, created_by="bob", created_at=T0 + timedelta(hours=1))
    assert store.datasets.add(again) == store.datasets.get(first.id)
    assert store.datasets.get(first.id).created_by == "ana"
    assert store.datasets.count() == 1


def test_add_holds_both_objects(store: SqlMetadataStore) -> None:
    version = make_version(store, "v1")
    store.datasets.add(version)
    for digest in (version.parquet, version.profile):
        assert store.artifacts.holders(digest) == [f"dataset:{version.id.hex}"]
    assert store.artifacts.referenced() == {version.parquet, version.profile}
    assert store.artifacts.forget([version.parquet, version.profile]) == 0


def test_add_refuses_objects_that_are_not_recorded(store: SqlMetadataStore) -> None:
    version = make_version(store, "v1")
    orphan = replace(version, profile=digest_of("never recorded"))
    with pytest.raises(NotFound, match="not recorded"):
        store.datasets.add(orphan)
    assert store.datasets.count() == 0
    assert store.artifacts.referenced() == set()


def test_an_unknown_id_is_not_found(store: SqlMetadataStore) -> None:
    unknown = digest_of("unknown")
    assert store.datasets.find(unknown) is None
    with pytest.raises(NotFound, match=unknown.hex):
        store.datasets.get(unknown)
    with pytest.raises(NotFound, match=unknown.hex[:8]):
        store.datasets.resolve(unknown.hex[:8])
    with pytest.raises(NotFound, match="no dataset versions"):
        store.datasets.resolve("latest")


def test_list_is_newest_first_and_limited(store: SqlMetadataStore) -> None:
    made = [
        make_version(store, name, created_at=T0 + timedelta(minutes=minutes))
        for name, minutes in (("b", 5), ("a", 0), ("c", 10))
    ]
    for version in made:
        store.datasets.add(version)
    assert [v.source for v in store.datasets.list()] == ["/data/c", "/data/b", "/data/a"]
    assert [v.source for v in store.datasets.list(limit=2)] == ["/data/c", "/data/b"]
    assert store.datasets.resolve("latest").source == "/data/c"


def test_an_ambiguous_prefix_lists_the_candidates(store: SqlMetadataStore) -> None:
    one = make_version(store, "one", id=_hex("abcdef0", "one"))
    two = make_version(store, "two", id=_hex("abcdef1", "two"))
    for version in (one, two):
        store.datasets.add(version)
    with pytest.raises(Conflict) as caught:
        store.datasets.resolve("abcdef")
    assert one.id.hex[:16] in caught.value.message
    assert two.id.hex[:16] in caught.value.message
    assert caught.value.hint
    assert store.datasets.resolve("abcdef1").id == two.id
    assert store.datasets.resolve("blake3:ABCDEF0").id == one.id


@pytest.mark.parametrize("ref", ["abc", "", "   ", "zzzzzzzz", "md5:abcdef12", "x" * 70])
def test_refs_that_cannot_name_a_version_are_config_errors(
    store: SqlMetadataStore, ref: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        store.datasets.resolve(ref)
    assert caught.value.message


@pytest.mark.load
def test_concurrent_adds_of_the_same_version_record_one(store: SqlMetadataStore) -> None:
    base = make_version(store, "race")
    attempts = [replace(base, created_by=f"worker-{n}") for n in range(4)]
    barrier = threading.Barrier(len(attempts))
    results: list[DatasetVersion] = []
    errors: list[BaseException] = []

    def add(version: DatasetVersion) -> None:
        try:
            barrier.wait(timeout=30)
            results.append(store.datasets.add(version))
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(v,)) for v in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert store.datasets.count() == 1
    winner = store.datasets.get(base.id)
    assert results == [winner] * len(attempts)
    assert len(winner.files) == len(base.files)


def test_migration_0002_downgrades_and_upgrades_again(
    metadata_url: str, store: SqlMetadataStore
) -> None:
    engine = create_metadata_engine(metadata_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0001")
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        assert {"datasets", "dataset_columns", "dataset_files"}.isdisjoint(tables)
        assert {"artifacts", "artifact_holders"} <= tables
    finally:
        engine.dispose()
    assert store.upgrade().up_to_date
    version = make_version(store, "after")
    assert store.datasets.add(version) == version
