"""Write-once documents beside the objects (the audit log's checkpoints live there): created
whole by the first writer, never replaced, listed by folder, on every backend."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from keel.artifacts import ArtifactStore, LocalArtifactStore
from keel.errors import ConfigError, Conflict, NotFound
from tests.artifacts.conftest import Backend
from tests.fixtures.s3 import S3Server


def test_a_document_is_written_once_and_listed(store: ArtifactStore) -> None:
    store.create_document("audit/checkpoints/0001.json", b'{"seq": 1}')
    store.create_document("audit/checkpoints/0002.json", b'{"seq": 2}')
    with pytest.raises(Conflict, match=r"0001\.json exists already"):
        store.create_document("audit/checkpoints/0001.json", b'{"seq": 1, "forged": true}')
    assert store.read_document("audit/checkpoints/0001.json") == b'{"seq": 1}'
    assert store.list_documents("audit/checkpoints") == [
        "audit/checkpoints/0001.json",
        "audit/checkpoints/0002.json",
    ]
    assert store.list_documents("audit/other") == []
    with pytest.raises(NotFound):
        store.read_document("audit/checkpoints/0003.json")


def test_documents_are_out_of_gc_and_object_listings(backend: Backend) -> None:
    from datetime import timedelta

    backend.store.create_document("audit/checkpoints/0001.json", b"{}")
    assert list(backend.store.iter_objects()) == []
    backend.store.gc(set(), grace=timedelta(0))
    assert backend.store.read_document("audit/checkpoints/0001.json") == b"{}"


@pytest.mark.parametrize(
    "name", ["../escape/x", "objects/ab/cd", "tmp/x", "Audit/x", "single", "audit/../x", "/abs/x"]
)
def test_names_that_could_escape_or_collide_are_refused(store: ArtifactStore, name: str) -> None:
    with pytest.raises(ConfigError, match="cannot name a document"):
        store.create_document(name, b"x")


def test_local_documents_are_read_only_files(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    store.create_document("audit/checkpoints/0001.json", b"{}")
    mode = (store.root / "audit" / "checkpoints" / "0001.json").stat().st_mode
    assert stat.S_IMODE(mode) & 0o222 == 0
    assert not any((store.root / "tmp").iterdir())


@pytest.mark.s3
def test_on_a_locked_bucket_a_document_cannot_be_deleted(s3_server: S3Server) -> None:
    client = s3_server.client()
    bucket = f"keel-locked-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)  # type: ignore[attr-defined]
    from keel.artifacts.s3 import S3ArtifactStore

    store = S3ArtifactStore(f"s3://{bucket}/p", **s3_server.options())  # type: ignore[arg-type]
    store.create_document("audit/checkpoints/0001.json", b"{}")
    head = client.head_object(Bucket=bucket, Key="p/audit/checkpoints/0001.json")  # type: ignore[attr-defined]
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(Exception, match=r"AccessDenied|locked|legal hold"):
        client.delete_object(  # type: ignore[attr-defined]
            Bucket=bucket, Key="p/audit/checkpoints/0001.json", VersionId=head["VersionId"]
        )
