"""What only the S3 backend does: multipart uploads, and how it talks about failures."""

from __future__ import annotations

import io
import os

import pytest

from keel.artifacts import S3ArtifactStore
from tests.artifacts.test_contract import Broken, reference_digest
from tests.fixtures.s3 import S3Server

pytestmark = pytest.mark.s3

MIB = 1024 * 1024


def _leftovers(server: S3Server, store: S3ArtifactStore) -> tuple[list[str], list[str]]:
    """Temp keys and unfinished multipart uploads under the store's prefix."""
    client = server.client()
    prefix = store.url.removeprefix(f"s3://{store.bucket}/") + "/tmp/"
    keys = client.list_objects_v2(Bucket=store.bucket, Prefix=prefix).get("Contents", [])  # type: ignore[attr-defined]
    uploads = client.list_multipart_uploads(Bucket=store.bucket, Prefix=prefix).get(  # type: ignore[attr-defined]
        "Uploads", []
    )
    return [key["Key"] for key in keys], [upload["Key"] for upload in uploads]


def test_large_objects_go_up_in_parts(s3_server: S3Server) -> None:
    store = s3_server.store(part_size=5 * MIB)
    data = os.urandom(12 * MIB + 7)

    stored = store.put_stream(io.BytesIO(data))

    assert stored.digest == reference_digest(data)
    assert store.read_bytes(stored.digest) == data
    assert _leftovers(s3_server, store) == ([], [])


def test_a_failed_multipart_upload_is_aborted(s3_server: S3Server) -> None:
    store = s3_server.store(part_size=5 * MIB)

    with pytest.raises(ConnectionResetError):
        store.put_stream(Broken(11 * MIB))  # type: ignore[arg-type]

    assert _leftovers(s3_server, store) == ([], [])


def test_url_and_repr_carry_no_credentials(s3_server: S3Server) -> None:
    store = s3_server.store("models/v1")

    assert store.url == f"s3://{s3_server.bucket}/models/v1"
    assert s3_server.secret not in repr(store)
    assert store.key_of(reference_digest(b"")).startswith("models/v1/objects/")


def test_an_unreachable_endpoint_is_a_store_error_and_unhealthy() -> None:
    store = S3ArtifactStore(
        "s3://bucket/prefix", endpoint_url="http://127.0.0.1:9", key="k", secret="s"
    )

    health = store.health()  # its probe put fails: the StoreError becomes the detail

    assert not health.ok
    assert "probe failed: S3 artifact store s3://bucket/prefix: cannot" in health.detail
