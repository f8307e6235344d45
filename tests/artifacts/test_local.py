"""What only the local folder backend promises: its layout, and surviving a kill -9."""

from __future__ import annotations

import json
import mmap
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import blake3
import pytest

from keel.artifacts import LocalArtifactStore
from keel.artifacts.files import TempFile
from keel.domain.digest import Digest
from tests.artifacts import _workers

REPO = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def test_layout_and_read_only_objects(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    digest = store.put_bytes(b"layout").digest

    path = tmp_path / "objects" / digest.hex[:2] / digest.hex[2:]
    assert store.path_of(digest) == path
    assert path.read_bytes() == b"layout"
    assert path.stat().st_mode & 0o777 == 0o444
    assert list((tmp_path / "tmp").iterdir()) == []


def test_putting_an_old_object_again_protects_it_from_gc(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    digest = store.put_bytes(b"old but wanted again").digest
    os.utime(store.path_of(digest), (0, 0))

    assert store.put_bytes(b"old but wanted again").existed
    assert store.gc(set(), grace=timedelta(hours=1)).deleted == []
    assert store.exists(digest)


def test_gc_puts_back_an_object_touched_after_it_was_listed(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    digest = store.put_bytes(b"touched").digest  # mtime: now
    listed_before = time.time() - 3600  # as if gc had listed it while it was an hour old

    assert store._delete_if_old(digest, cutoff=listed_before) is None
    assert store.read_bytes(digest) == b"touched"
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("aligned_memory", [True, False])
def test_temp_files_take_any_chunk_sizes_and_buffers(tmp_path: Path, aligned_memory: bool) -> None:
    # Direct I/O wants aligned memory, offsets and lengths; whatever it cannot take must
    # still land, through the page cache.
    sizes = [8192, 4096, 5000, 8192, 3, 0, 4096]
    data = os.urandom(sum(sizes))
    temp = TempFile(tmp_path, "t-")
    with temp:
        offset = 0
        for size in sizes:
            buffer = mmap.mmap(-1, max(size, 1)) if aligned_memory else bytearray(size + 1)
            view = memoryview(buffer)[:size] if aligned_memory else memoryview(buffer)[1:]
            view[:] = data[offset : offset + size]
            temp.write(view)
            view.release()
            offset += size
        temp.sync()
    assert temp.path.read_bytes() == data


def _run_worker(*args: str, output: bool = True) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.artifacts._workers", *args],
        cwd=REPO,
        stdout=subprocess.PIPE if output else subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.slow
def test_two_gigabytes_round_trip_in_bounded_memory(tmp_path: Path) -> None:
    size_mib = 2048
    block = random.Random(7).randbytes(MIB)
    source = tmp_path / "big.bin"
    independent = blake3.blake3(max_threads=blake3.blake3.AUTO)
    with source.open("wb") as file:
        for _ in range(size_mib):
            file.write(block)
            independent.update(block)
    expected = Digest.of_hex(independent.hexdigest())
    dest = tmp_path / "restored.bin"
    try:
        worker = _run_worker("roundtrip", str(tmp_path / "store"), str(source), str(dest))
        out, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0
        report = json.loads(out)
        print(report)  # shown with -s: put and get times of the 2 GB file

        assert report["digest"] == str(expected)
        assert report["size"] == size_mib * MIB
        assert report["peak_rss_bytes"] < 200 * 1000 * 1000, report
        assert dest.stat().st_size == size_mib * MIB
        check = blake3.blake3(max_threads=blake3.blake3.AUTO)
        check.update_mmap(dest)
        assert check.hexdigest() == expected.hex
    finally:
        # 6 GB would otherwise stay in pytest's kept temp folders.
        for path in (source, dest, *(tmp_path / "store" / "objects").rglob("*")):
            if path.is_file():
                path.unlink()


@pytest.mark.slow
def test_a_put_killed_midway_leaves_no_object_and_gc_cleans_up(tmp_path: Path) -> None:
    root = tmp_path / "store"
    worker = _run_worker("slow-put", str(root), output=False)
    try:
        deadline = time.monotonic() + 60
        while True:
            temps = list((root / "tmp").glob("put-*")) if (root / "tmp").exists() else []
            if temps and temps[0].stat().st_size >= 8 * MIB:
                break
            assert worker.poll() is None, "the put ended before it could be killed"
            assert time.monotonic() < deadline, "no temp file grew in time"
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL

    store = LocalArtifactStore(root)
    whole = blake3.blake3()
    for _ in range(_workers.SLOW_BLOCKS):
        whole.update(_workers.slow_block())
    assert list(store.iter_objects()) == []
    assert not store.exists(Digest.of_hex(whole.hexdigest()))

    report = store.gc(set(), grace=timedelta(0))
    assert report.temp_files_removed == 1
    assert report.deleted == []
    assert list((root / "tmp").iterdir()) == []
