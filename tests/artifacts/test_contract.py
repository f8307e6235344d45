"""The artifact store contract, run against every backend (see conftest.py)."""

from __future__ import annotations

import io
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.artifacts import ArtifactStore, PutResult
from keel.artifacts.hashing import CHUNK_SIZE
from keel.domain.digest import Digest
from keel.errors import IntegrityError, NotFound
from tests.artifacts import _workers
from tests.artifacts.conftest import Backend

#: More than two chunks and not a multiple of one, so the pipelined copy hands off buffers.
MULTI_CHUNK = 2 * CHUNK_SIZE + 12_345


def reference_digest(data: bytes) -> Digest:
    """BLAKE3 straight from the library, independent of keel's hashing helpers."""
    return Digest.of_hex(blake3.blake3(data).hexdigest())


def test_file_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(MULTI_CHUNK)
    source = tmp_path / "model.bin"
    source.write_bytes(data)

    stored = store.put_file(source)

    assert stored == PutResult(digest=reference_digest(data), size=len(data), existed=False)
    assert store.exists(stored.digest)
    assert store.info(stored.digest).size == len(data)
    dest = tmp_path / "out" / "restored.bin"
    store.get_file(stored.digest, dest)
    assert dest.read_bytes() == data
    assert store.read_bytes(stored.digest) == data
    store.verify(stored.digest)
    assert [path.name for path in dest.parent.iterdir()] == ["restored.bin"]  # no temp left


def test_identical_content_is_stored_once(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(b"same bytes")

    first = store.put_file(source)
    second = store.put_bytes(b"same bytes")

    assert (first.existed, second.existed) == (False, True)
    assert first.digest == second.digest
    assert [info.digest for info in store.iter_objects()] == [first.digest]


def test_empty_object(store: ArtifactStore, tmp_path: Path) -> None:
    stored = store.put_bytes(b"")

    assert stored.digest == reference_digest(b"")
    assert stored.size == 0
    assert store.read_bytes(stored.digest) == b""
    dest = tmp_path / "empty"
    dest.write_bytes(b"old")
    store.get_file(stored.digest, dest)
    assert dest.read_bytes() == b""


class Trickle(io.RawIOBase):
    """A stream that hands out at most 1000 bytes per read, as a socket or pipe might."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        size = min(len(buffer), 1000, len(self._data))
        buffer[:size] = self._data[:size]
        self._data = self._data[size:]
        return size


class ReadOnly:
    """A stream with read() but no readinto()."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)


@pytest.mark.parametrize("kind", ["bytesio", "trickle", "read-only"])
def test_put_stream(store: ArtifactStore, kind: str) -> None:
    data = os.urandom(MULTI_CHUNK if kind != "trickle" else 300_000)
    stream = {"bytesio": io.BytesIO, "trickle": Trickle, "read-only": ReadOnly}[kind](data)
    seen: list[int] = []

    stored = store.put_stream(stream, progress=seen.append)  # type: ignore[arg-type]

    assert stored.digest == reference_digest(data)
    assert stored.size == sum(seen) == len(data)
    assert store.read_bytes(stored.digest) == data


def test_get_file_reports_progress(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(MULTI_CHUNK)
    digest = store.put_bytes(data).digest
    seen: list[int] = []

    store.get_file(digest, tmp_path / "out", progress=seen.append)

    assert sum(seen) == len(data)


def _flip_first_byte(backend: Backend, digest: Digest, data: bytes) -> None:
    backend.overwrite(digest, bytes([data[0] ^ 0xFF]) + data[1:])


def test_corruption_is_detected_on_every_read(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    data = os.urandom(MULTI_CHUNK)
    digest = store.put_bytes(data).digest
    _flip_first_byte(backend, digest, data)

    for read in (
        lambda: store.read_bytes(digest),
        lambda: store.get_file(digest, tmp_path / "out" / "out.bin"),
        lambda: store.verify(digest),
    ):
        with pytest.raises(IntegrityError) as caught:
            read()
        message = str(caught.value)
        assert str(digest) in message
        assert digest.hex[2:] in message  # names where the object lives
    assert list((tmp_path / "out").iterdir()) == []


def test_get_file_leaves_dest_untouched_when_corrupt(backend: Backend, tmp_path: Path) -> None:
    data = os.urandom(1000)
    digest = backend.store.put_bytes(data).digest
    backend.overwrite(digest, data[:-1])  # truncated
    dest = tmp_path / "models" / "model.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"the previous model")

    with pytest.raises(IntegrityError):
        backend.store.get_file(digest, dest)

    assert dest.read_bytes() == b"the previous model"
    assert [path.name for path in dest.parent.iterdir()] == ["model.bin"]  # temp removed


def test_unknown_digest_is_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    digest = reference_digest(b"never stored")
    dest = tmp_path / "dest"

    assert not store.exists(digest)
    for call in (
        lambda: store.read_bytes(digest),
        lambda: store.get_file(digest, dest),
        lambda: store.info(digest),
        lambda: store.verify(digest),
        lambda: store.delete(digest),
    ):
        with pytest.raises(NotFound, match=digest.hex):
            call()
    assert not dest.exists()


def test_iter_objects_and_delete(store: ArtifactStore) -> None:
    blobs = [b"one", b"two" * 1000, b""]
    stored = [store.put_bytes(blob) for blob in blobs]

    listed = {info.digest: info.size for info in store.iter_objects()}
    assert listed == {result.digest: result.size for result in stored}

    store.delete(stored[0].digest)
    assert not store.exists(stored[0].digest)
    assert len(list(store.iter_objects())) == 2


def test_gc_keeps_referenced_and_young_objects(store: ArtifactStore) -> None:
    kept, young, old = (store.put_bytes(blob).digest for blob in (b"kept", b"young", b"old"))

    # Within the grace period nothing goes, referenced or not.
    report = store.gc({kept}, grace=timedelta(hours=1))
    assert report.deleted == []
    assert report.kept == 3

    # With no grace, only the referenced object stays.
    report = store.gc({kept, young}, grace=timedelta(0))
    assert report.deleted == [old]
    assert report.freed_bytes == len(b"old")
    assert [info.digest for info in store.iter_objects()] == sorted([kept, young])


def test_gc_removes_stale_temp_files(backend: Backend) -> None:
    backend.leave_stale_upload()
    digest = backend.store.put_bytes(b"live").digest

    report = backend.store.gc({digest}, grace=timedelta(0))

    assert report.temp_files_removed >= 1
    assert backend.store.gc({digest}, grace=timedelta(0)).temp_files_removed == 0
    assert backend.store.read_bytes(digest) == b"live"


def test_putting_again_refreshes_the_modified_time(store: ArtifactStore) -> None:
    digest = store.put_bytes(b"popular").digest
    before = store.info(digest).modified
    time.sleep(1.1)  # S3 times have one-second resolution

    assert store.put_bytes(b"popular").existed
    assert store.info(digest).modified > before


def test_health(store: ArtifactStore) -> None:
    health = store.health()

    assert health.ok, health.detail
    assert health.kind == "artifacts"
    assert health.backend == store.backend
    assert health.latency_ms > 0
    assert list(store.iter_objects()) == []  # the probe is gone


def test_concurrent_puts_from_threads(store: ArtifactStore) -> None:
    data = os.urandom(MULTI_CHUNK)
    start = threading.Barrier(6)

    def put() -> PutResult:
        start.wait()
        return store.put_bytes(data)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: put(), range(6)))

    assert {result.digest for result in results} == {reference_digest(data)}
    assert any(not result.existed for result in results)
    if store.backend == "local":  # hard links make placement exclusive
        assert sum(not result.existed for result in results) == 1
    assert len(list(store.iter_objects())) == 1
    assert store.read_bytes(results[0].digest) == data


def test_concurrent_puts_from_processes(
    backend: Backend, spawn_pool: ProcessPoolExecutor, tmp_path: Path
) -> None:
    data = os.urandom(CHUNK_SIZE + 1)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    futures = [
        spawn_pool.submit(
            _workers.put_in_child, backend.url, backend.options, data, 3, str(barrier), 2
        )
        for _ in range(2)
    ]
    results = [future.result(timeout=120) for future in futures]

    assert len({pid for pid, _ in results}) == 2
    lines = [line for _, lines in results for line in lines]
    assert {line.split()[0] for line in lines} == {str(reference_digest(data))}
    assert len(list(backend.store.iter_objects())) == 1
    assert backend.store.read_bytes(reference_digest(data)) == data


@settings(
    max_examples=25,
    deadline=None,  # S3 round trips through moto vary
    # One store serves every example on purpose: content addressing makes that harmless.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(piece=st.binary(max_size=4096), repeat=st.integers(1, 64))
def test_digest_is_blake3_of_the_bytes(store: ArtifactStore, piece: bytes, repeat: int) -> None:
    data = piece * repeat  # up to 256 KiB without asking hypothesis for that much entropy
    stored = store.put_bytes(data)

    assert stored.digest == reference_digest(data)
    assert stored.size == len(data)
    assert store.read_bytes(stored.digest) == data


class Broken(io.RawIOBase):
    """Yields `good` bytes, then fails as a dropped connection would."""

    def __init__(self, good: int) -> None:
        self._left = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._left:
            raise ConnectionResetError("the source went away")
        size = min(len(buffer), self._left)
        buffer[:size] = b"\x01" * size
        self._left -= size
        return size


def test_a_failed_put_leaves_nothing_behind(store: ArtifactStore) -> None:
    with pytest.raises(ConnectionResetError):
        store.put_stream(Broken(MULTI_CHUNK))  # type: ignore[arg-type]

    assert list(store.iter_objects()) == []
    assert store.gc(set(), grace=timedelta(0)).temp_files_removed == 0


def test_get_file_writes_data_never_programs(store: ArtifactStore, tmp_path: Path) -> None:
    stored = store.put_bytes(b"#!/bin/sh\necho restored\n")
    dest = tmp_path / "restored.sh"

    previous = os.umask(0o022)
    try:
        store.get_file(stored.digest, dest)
    finally:
        os.umask(previous)

    assert dest.stat().st_mode & 0o777 == 0o644  # 0o666 less the umask: never executable
