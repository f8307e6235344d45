"""Artifact records and holders: the same semantics on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keel.errors import IntegrityError, NotFound
from keel.metadata import ArtifactRecords, SqlMetadataStore
from tests.metadata.helpers import digest_of

A, B, C = digest_of("a"), digest_of("b"), digest_of("c")


@pytest.fixture
def records(store: SqlMetadataStore) -> ArtifactRecords:
    return store.artifacts


def test_record_then_get_find_and_list(records: ArtifactRecords) -> None:
    made = records.record(A, size=3, media_type="text/plain", actor="ada")
    assert (made.digest, made.size, made.media_type, made.created_by) == (A, 3, "text/plain", "ada")
    assert records.get(A) == made
    assert records.find(A) == made
    assert records.list() == [made]
    assert records.count() == 1


def test_unknown_digest_is_not_found(records: ArtifactRecords) -> None:
    assert records.find(A) is None
    with pytest.raises(NotFound, match=A.hex):
        records.get(A)
    assert records.holders(A) == []


def test_record_is_idempotent_and_keeps_the_first_record(records: ArtifactRecords) -> None:
    first = records.record(A, size=3, media_type="text/plain", actor="ada")
    again = records.record(A, size=3, media_type="application/json", actor="bob")
    assert again == first
    assert records.count() == 1


def test_the_same_digest_with_another_size_is_an_integrity_error(records: ArtifactRecords) -> None:
    records.record(A, size=3, media_type="text/plain", actor="ada")
    with pytest.raises(IntegrityError, match="size 3"):
        records.record(A, size=4, media_type="text/plain", actor="ada", holder="run:1")
    assert records.holders(A) == []  # the failed call changed nothing


def test_bad_arguments_are_refused(records: ArtifactRecords) -> None:
    with pytest.raises(ValueError, match="size"):
        records.record(A, size=-1, media_type="text/plain", actor="ada")
    with pytest.raises(ValueError, match="holder"):
        records.record(A, size=1, media_type="text/plain", actor="ada", holder=" ")
    assert records.count() == 0


def test_list_is_oldest_first_and_limited(records: ArtifactRecords) -> None:
    for digest in (C, A, B):
        records.record(digest, size=1, media_type="x", actor="ada")
    assert [r.digest for r in records.list()] == [C, A, B]
    assert [r.digest for r in records.list(limit=2)] == [C, A]


def test_timestamps_are_timezone_aware_utc(records: ArtifactRecords) -> None:
    before = datetime.now(UTC)
    made = records.record(A, size=1, media_type="x", actor="ada")
    read = records.get(A)
    for moment in (made.created_at, read.created_at):
        assert moment.tzinfo is UTC
        assert before - timedelta(seconds=1) <= moment <= datetime.now(UTC)
    assert read.created_at == made.created_at


def test_record_with_holder_and_more_holders(records: ArtifactRecords) -> None:
    records.record(A, size=1, media_type="x", actor="ada", holder="run:2/model")
    records.add_holder(A, "dataset:1")
    records.add_holder(A, "dataset:1")  # idempotent
    records.record(A, size=1, media_type="x", actor="ada", holder="run:2/model")
    assert records.holders(A) == ["dataset:1", "run:2/model"]


def test_add_holder_to_an_unknown_digest_is_not_found(records: ArtifactRecords) -> None:
    with pytest.raises(NotFound, match=A.hex):
        records.add_holder(A, "run:1")
    assert records.holders(A) == []


def test_remove_holder_is_idempotent(records: ArtifactRecords) -> None:
    records.record(A, size=1, media_type="x", actor="ada", holder="run:1")
    records.remove_holder(A, "run:1")
    records.remove_holder(A, "run:1")
    records.remove_holder(B, "run:1")
    assert records.holders(A) == []


def test_referenced_is_every_held_digest(records: ArtifactRecords) -> None:
    records.record(A, size=1, media_type="x", actor="ada", holder="run:1")
    records.record(B, size=1, media_type="x", actor="ada", holder="run:1")
    records.add_holder(B, "run:2")
    records.record(C, size=1, media_type="x", actor="ada")
    assert records.referenced() == {A, B}


def test_forget_deletes_only_unheld_records(records: ArtifactRecords) -> None:
    records.record(A, size=1, media_type="x", actor="ada", holder="run:1")
    records.record(B, size=1, media_type="x", actor="ada")
    assert records.forget([A, B, C, B]) == 1
    assert records.find(B) is None
    assert records.get(A).digest == A
    records.remove_holder(A, "run:1")
    assert records.forget([A]) == 1
    assert records.count() == 0


def test_forget_handles_more_digests_than_one_statement_takes(records: ArtifactRecords) -> None:
    records.record(A, size=1, media_type="x", actor="ada")
    records.record(B, size=1, media_type="x", actor="ada", holder="run:1")
    many = [digest_of(f"unknown/{n}") for n in range(1_200)]
    assert records.forget([*many, A, B]) == 1
    assert records.count() == 1
    assert records.forget([]) == 0
