"""One contract, every backend: the `backend` fixture runs each test on a local folder and
on S3 (moto's server on loopback; see tests/fixtures/s3.py for why moto)."""

from __future__ import annotations

import multiprocessing
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from keel.artifacts import ArtifactStore, LocalArtifactStore
from keel.domain.digest import Digest
from tests.fixtures.s3 import S3Server


@dataclass
class Backend:
    """A store under test plus what a test needs to reach around it."""

    name: str
    store: ArtifactStore
    url: str
    #: Overwrite the stored object's bytes with `data`, as disk rot or a bad upload would.
    overwrite: Callable[[Digest, bytes], None]
    #: Leave behind what a put killed midway would, old enough for any grace period.
    leave_stale_upload: Callable[[], None]
    #: What `open_artifact_store(url, options)` needs in another process.
    options: dict[str, str] = field(default_factory=dict)


def _local(tmp_path: Path) -> Backend:
    store = LocalArtifactStore(tmp_path / "store")

    def overwrite(digest: Digest, data: bytes) -> None:
        path = store.path_of(digest)
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        path.write_bytes(data)
        path.chmod(0o444)

    def leave_stale_upload() -> None:
        temp = store.root / "tmp" / f"put-{uuid.uuid4().hex}"
        temp.write_bytes(b"half an upload")
        os.utime(temp, (0, 0))

    return Backend(
        "local", store, store.url, overwrite=overwrite, leave_stale_upload=leave_stale_upload
    )


def _s3(server: S3Server) -> Backend:
    store = server.store()
    client = server.client()

    def overwrite(digest: Digest, data: bytes) -> None:
        client.put_object(Bucket=store.bucket, Key=store.key_of(digest), Body=data)  # type: ignore[attr-defined]

    def leave_stale_upload() -> None:
        # A killed put leaves an unfinished multipart upload, or a finished temp key if it
        # died between upload and copy. S3 times cannot be backdated: gc runs with grace 0.
        prefix = store.url.removeprefix(f"s3://{store.bucket}/")
        key = f"{prefix}/tmp/{uuid.uuid4().hex}"
        client.create_multipart_upload(Bucket=store.bucket, Key=key)  # type: ignore[attr-defined]
        client.put_object(Bucket=store.bucket, Key=f"{key}-done", Body=b"x")  # type: ignore[attr-defined]

    return Backend(
        "s3",
        store,
        store.url,
        options=server.options(),
        overwrite=overwrite,
        leave_stale_upload=leave_stale_upload,
    )


@pytest.fixture(scope="session")
def spawn_pool() -> Iterator[ProcessPoolExecutor]:
    """Two worker processes, started once: each start imports keel afresh (seconds).

    spawn, not fork: this process runs threads (moto's server, s3fs's event loop).
    """
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return _local(tmp_path)
    return _s3(request.getfixturevalue("s3_server"))


@pytest.fixture
def store(backend: Backend) -> ArtifactStore:
    return backend.store
