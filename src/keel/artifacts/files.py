"""Local file plumbing for both backends: direct-I/O temp files and readers, verified
atomic writes, fsynced directories, and the errors a store raises about its bytes.

Why direct I/O (O_DIRECT): an artifact is written once and fsynced at once, and read once
start to end, so the page cache buys nothing, while filling it costs kernel CPU that
competes with hashing. On the benchmark machine (docs/benchmarks.md) buffered write+fsync
ran at 0.3-0.4 GB/s using 2-3 CPU seconds per GB; direct writes ran at 1.8 GB/s using
almost none. Direct I/O wants offsets, lengths and memory aligned to the device's block
size: `copy_and_hash` hands out page-aligned 4 MiB chunks; an unaligned tail, and any
filesystem that refuses direct I/O (EINVAL), go through the page cache instead.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from keel.artifacts.base import ProgressCallback
from keel.artifacts.hashing import ReadInto, copy_and_hash
from keel.domain.digest import Digest
from keel.errors import IntegrityError, NotFound, StoreError

__all__ = [
    "FILE_MODE",
    "DirectReader",
    "TempFile",
    "corrupt",
    "fsync_dir",
    "not_found",
    "store_errors",
    "write_verified",
]

#: fdatasync skips metadata the data does not need; macOS lacks it.
_datasync = getattr(os, "fdatasync", os.fsync)
#: Linux's flag for I/O that bypasses the page cache (0 where there is none: macOS, Windows).
_O_DIRECT: Final = getattr(os, "O_DIRECT", 0)
#: Files keel writes from the store: readable by all, writable by the owner, less the umask.
FILE_MODE: Final = 0o666
#: Direct I/O alignment: 4 KiB suits both 512-byte and 4 KiB-sector devices.
_ALIGN: Final = 4096


def corrupt(digest: Digest, where: str, actual: Digest) -> IntegrityError:
    """The error for stored bytes that do not hash to their name."""
    return IntegrityError(
        f"artifact {digest} at {where} is corrupt: its bytes hash to {actual}",
        hint="delete the object and put it again from a good copy",
    )


def write_verified(
    read_into: ReadInto,
    digest: Digest,
    dest: Path,
    where: str,
    progress: ProgressCallback | None = None,
) -> None:
    """Copy an object to `dest` atomically: into a temp file beside it, hashed on the way,
    fsynced, and renamed over `dest` only if the bytes match `digest`. On any failure the
    temp file is removed and `dest` is untouched. `where` names the object in errors."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = TempFile(dest.parent, f".{dest.name}.keel-")
    try:
        with temp:
            actual, _ = copy_and_hash(read_into, temp.write, flush=temp.flush, progress=progress)
            if actual != digest:
                raise corrupt(digest, where, actual)
            temp.sync()
        temp.path.replace(dest)
    finally:
        temp.path.unlink(missing_ok=True)
    fsync_dir(dest.parent)


def not_found(digest: Digest, url: str) -> NotFound:
    """The error for an object the store at `url` does not hold."""
    return NotFound(f"artifact {digest} is not in the store at {url}")


@contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Turn an OS error of the store's own files into `StoreError` (the user's files keep
    their OSError, which already names them)."""
    try:
        yield
    except OSError as exc:
        raise StoreError(f"{what}: {exc.strerror or exc}") from exc


class TempFile:
    """A new file (exclusively created, default permissions), written with O_DIRECT as
    far as the filesystem and the alignment of each chunk allow, buffered after that."""

    def __init__(self, folder: Path, prefix: str) -> None:
        self.path = folder / f"{prefix}{uuid.uuid4().hex}"
        # Not mkstemp: its 0o600 would make a restored file look unlike any other. And not
        # os.open's default of 0o777: an artifact is data, never a program to run.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        with store_errors(f"cannot create a temporary file in {folder}"):
            try:
                self.fd = os.open(self.path, flags | _O_DIRECT, FILE_MODE)
                self.direct = bool(_O_DIRECT)
            except OSError as exc:
                if exc.errno != errno.EINVAL or not _O_DIRECT:
                    raise
                self.fd = os.open(self.path, flags, FILE_MODE)
                self.direct = False
        self.offset = 0

    def __enter__(self) -> TempFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)

    def write(self, chunk: memoryview) -> None:
        with store_errors(f"cannot write {self.path}"):
            if self.direct:
                aligned = len(chunk) - len(chunk) % _ALIGN
                if aligned and self.offset % _ALIGN == 0:
                    start = self.offset
                    try:
                        self._write_all(chunk[:aligned])
                    except OSError as exc:
                        if exc.errno != errno.EINVAL:
                            raise
                        # Opened but not writable directly (alignment, filesystem): fall back.
                    chunk = chunk[self.offset - start :]
                if chunk:
                    self._stop_direct()
            self._write_all(chunk)

    def _write_all(self, chunk: memoryview) -> None:
        while chunk:
            written = os.write(self.fd, chunk)
            self.offset += written
            chunk = chunk[written:]

    def _stop_direct(self) -> None:
        _clear_direct(self.fd)
        self.direct = False

    def flush(self) -> None:
        """Start writing buffered data out, so the final fsync has little left to do."""
        if not self.direct:
            _datasync(self.fd)

    def sync(self) -> None:
        with store_errors(f"cannot write {self.path}"):
            os.fsync(self.fd)


class DirectReader:
    """Reads a file with O_DIRECT where possible: objects are read once, start to end, and
    are rarely in the page cache (they were written around it). Falls back to buffered reads
    on EINVAL (a filesystem without direct I/O, or an unaligned read after a short one)."""

    def __init__(self, path: Path) -> None:
        try:
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | _O_DIRECT)
            self.direct = bool(_O_DIRECT)
        except OSError as exc:
            if exc.errno != errno.EINVAL or not _O_DIRECT:
                raise
            self.fd = os.open(path, os.O_RDONLY)
            self.direct = False

    def __enter__(self) -> DirectReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)

    def readinto(self, view: memoryview) -> int:
        if self.direct:
            try:
                return os.readv(self.fd, [view])
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                _clear_direct(self.fd)
                self.direct = False
        return os.readv(self.fd, [view])


def _clear_direct(fd: int) -> None:
    import fcntl  # POSIX only, as is O_DIRECT

    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_O_DIRECT)


def fsync_dir(folder: Path) -> None:
    """Make a new directory entry durable (POSIX; Windows has no directory handles)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
