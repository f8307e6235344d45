"""A machine-local stat cache: (path, size, mtime, inode) -> content digest.

Snapshotting unchanged files must not read them again. A file whose size, modification time
and inode are what they were when it was hashed is taken to hold the same bytes, as git's
index and DVC's state database do. The cache lives in `<project>/.keel/cache/stat.db`
(stdlib sqlite3, WAL, so several processes share it), never in the shared metadata store:
inodes and mtimes mean nothing on another machine.

Racy entries: a file written within `RACY_WINDOW_NS` before it was hashed could be written
again within the same timestamp tick, keeping size and mtime; such an entry is not trusted,
and the file is hashed again next time (git's "racily clean" rule). Once the file is older
than the window the entry is refreshed and sticks.

The cache is only an accelerator: if its database cannot be used, every lookup misses and
files are hashed, never an error.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

from keel.artifacts.hashing import hash_file
from keel.domain.digest import Digest

__all__ = ["RACY_WINDOW_NS", "StatCache", "StatKey"]

#: Files modified less than this long before hashing started are hashed again next time.
#: Two seconds covers coarse filesystem clocks (FAT has 2 s mtimes; ext4 ticks in ms).
RACY_WINDOW_NS: Final = 2_000_000_000
#: How long a process waits for another's write to the cache before giving up on it.
_BUSY_TIMEOUT_S: Final = 10.0

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS stat_cache (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    digest TEXT NOT NULL,
    hashed_at_ns INTEGER NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class StatKey:
    """What `os.stat` says about a file; equal keys are taken to mean equal content."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> StatKey:
        info = path.stat()
        return cls(size=info.st_size, mtime_ns=info.st_mtime_ns, inode=info.st_ino)


class StatCache:
    """Digests of local files, remembered by their stat.

    `digest(path)` answers from the cache when the file's stat is unchanged and hashes the
    file (BLAKE3, `keel.artifacts.hashing.hash_file`) otherwise; `hits` and `misses` count
    the two. One instance per thread; any number of processes may share the file.
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.hits = 0
        self.misses = 0
        self._conn = self._open(db_path)

    @staticmethod
    def _open(db_path: Path) -> sqlite3.Connection | None:
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(db_path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error):
            return None
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            # A lost entry after a power cut only costs one re-hash; no need to wait for disk.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(_SCHEMA)
        except sqlite3.DatabaseError:
            conn.close()
            # Not a database (or corrupt): it holds nothing worth keeping; start again.
            with contextlib.suppress(OSError):
                db_path.unlink()
            try:
                conn = sqlite3.connect(db_path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(_SCHEMA)
            except sqlite3.Error:
                return None
        return conn

    def lookup(self, path: Path, key: StatKey) -> Digest | None:
        """The cached digest of `path` if its stat is still `key` and the entry is not racy."""
        if self._conn is None:
            return None
        try:
            row = self._conn.execute(
                "SELECT size, mtime_ns, inode, digest, hashed_at_ns FROM stat_cache WHERE path = ?",
                (_key_path(path),),
            ).fetchone()
        except sqlite3.Error:
            return None
        if row is None:
            return None
        size, mtime_ns, inode, digest, hashed_at_ns = row
        if (size, mtime_ns, inode) != (key.size, key.mtime_ns, key.inode):
            return None
        if mtime_ns >= hashed_at_ns - RACY_WINDOW_NS:
            return None
        try:
            return Digest.parse(digest)
        except ValueError:
            return None

    def store(self, path: Path, key: StatKey, digest: Digest, *, hashed_at_ns: int) -> None:
        """Remember `digest` for `path` at `key`; `hashed_at_ns` is when hashing started."""
        if self._conn is None:
            return
        # Another process writing the cache at this moment is not worth failing for.
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute(
                "INSERT OR REPLACE INTO stat_cache "
                "(path, size, mtime_ns, inode, digest, hashed_at_ns) VALUES (?, ?, ?, ?, ?, ?)",
                (_key_path(path), key.size, key.mtime_ns, key.inode, str(digest), hashed_at_ns),
            )

    def digest(self, path: Path, key: StatKey | None = None) -> Digest:
        """The content digest of a file, hashing it only when its stat changed.

        `key` is the file's stat if the caller already took it (to compare it later).
        """
        if key is None:
            key = StatKey.of(path)
        cached = self.lookup(path, key)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        started = time.time_ns()
        digest = hash_file(path)
        # The file may have changed while it was read: then what we hashed is not what
        # the new stat describes, and nothing is remembered.
        if StatKey.of(path) == key:
            self.store(path, key, digest, hashed_at_ns=started)
        return digest

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> StatCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _key_path(path: Path) -> str:
    # The absolute path without resolving symlinks: a link retargeted to another file
    # changes the inode, which the key already catches.
    return os.path.abspath(path)  # noqa: PTH100 - Path.absolute() keeps ".." segments
