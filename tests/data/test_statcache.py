"""The stat cache: hits for unchanged files, misses for anything that could hide a change."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import keel.data.statcache as module
from keel.artifacts.hashing import hash_bytes
from keel.data.statcache import RACY_WINDOW_NS, StatCache, StatKey
from tests.data.conftest import OLD_MTIME_NS, set_mtime


@pytest.fixture
def cache(tmp_path: Path) -> StatCache:
    return StatCache(tmp_path / "cache" / "stat.db")


def _file(path: Path, data: bytes, mtime_ns: int = OLD_MTIME_NS) -> Path:
    path.write_bytes(data)
    set_mtime(path, mtime_ns)
    return path


def test_an_unchanged_file_is_hashed_once(cache: StatCache, tmp_path: Path) -> None:
    path = _file(tmp_path / "a.csv", b"x,y\n1,2\n")
    assert cache.digest(path) == hash_bytes(b"x,y\n1,2\n")
    assert cache.digest(path) == hash_bytes(b"x,y\n1,2\n")
    assert (cache.hits, cache.misses) == (1, 1)


def test_the_cache_is_shared_through_its_file(tmp_path: Path) -> None:
    path = _file(tmp_path / "a.csv", b"data")
    with StatCache(tmp_path / "stat.db") as first:
        first.digest(path)
    with StatCache(tmp_path / "stat.db") as second:
        assert second.digest(path) == hash_bytes(b"data")
        assert (second.hits, second.misses) == (1, 0)


def test_size_mtime_and_inode_changes_are_misses(cache: StatCache, tmp_path: Path) -> None:
    path = _file(tmp_path / "a.csv", b"one")
    cache.digest(path)
    _file(path, b"three")  # same mtime, new size
    assert cache.digest(path) == hash_bytes(b"three")
    _file(path, b"THREE", OLD_MTIME_NS + 1)  # same size, new mtime
    assert cache.digest(path) == hash_bytes(b"THREE")
    replacement = _file(tmp_path / "b.csv", b"three")  # same size and mtime, new inode
    replacement.replace(path)
    assert cache.digest(path) == hash_bytes(b"three")
    assert (cache.hits, cache.misses) == (0, 4)


def test_a_racy_entry_is_not_trusted(cache: StatCache, tmp_path: Path) -> None:
    now = time.time_ns()
    path = _file(tmp_path / "a.csv", b"fresh", now)
    key = StatKey.of(path)
    cache.store(path, key, hash_bytes(b"fresh"), hashed_at_ns=now + 1_000)
    assert cache.lookup(path, key) is None
    cache.store(path, key, hash_bytes(b"fresh"), hashed_at_ns=now + RACY_WINDOW_NS + 1)
    assert cache.lookup(path, key) == hash_bytes(b"fresh")


def test_a_file_that_changes_while_hashed_is_not_remembered(
    cache: StatCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _file(tmp_path / "a.csv", b"before")
    real = module.hash_file

    def hash_then_change(target: Path) -> object:
        digest = real(target)
        _file(target, b"after!!", OLD_MTIME_NS + 5)
        return digest

    monkeypatch.setattr(module, "hash_file", hash_then_change)
    cache.digest(path)
    monkeypatch.setattr(module, "hash_file", real)
    assert cache.digest(path) == hash_bytes(b"after!!")
    assert cache.misses == 2


def test_a_corrupt_cache_is_replaced(tmp_path: Path) -> None:
    db = tmp_path / "stat.db"
    db.write_bytes(b"not a database at all" * 200)
    path = _file(tmp_path / "a.csv", b"data")
    with StatCache(db) as cache:
        cache.digest(path)
        assert cache.digest(path) == hash_bytes(b"data")
        assert cache.hits == 1


def test_a_cache_under_a_file_only_means_hashing(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    path = _file(tmp_path / "a.csv", b"data")
    with StatCache(blocker / "stat.db") as cache:
        assert cache.digest(path) == hash_bytes(b"data")
        assert cache.digest(path) == hash_bytes(b"data")
        assert (cache.hits, cache.misses) == (0, 2)
