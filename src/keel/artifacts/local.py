"""The local artifact store: a folder of read-only files named by their digest.

    root/objects/ab/cdef...   the object whose digest is blake3:abcdef...
    root/tmp/                 puts in progress (and gc's graveyard); gc removes stale ones
    root/<folder>/<name>      write-once documents (audit/checkpoints/...), read-only files

A put writes and fsyncs a temp file (around the page cache: see `keel.artifacts.files`),
then hard-links it into place (no-clobber: a concurrent put of the same bytes is seen as
`existed`), so a reader sees a whole object or none, and an acknowledged put survives a
crash.
"""

from __future__ import annotations

import errno
import os
import time
import uuid
from collections.abc import Iterator, Set
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from io import FileIO
from pathlib import Path
from typing import BinaryIO, Final

from keel.artifacts.base import (
    ArtifactStore,
    GcReport,
    ObjectInfo,
    ProgressCallback,
    PutResult,
    check_document_name,
)
from keel.artifacts.files import (
    DirectReader,
    TempFile,
    corrupt,
    fsync_dir,
    not_found,
    store_errors,
    write_verified,
)
from keel.artifacts.hashing import (
    ReadInto,
    copy_and_hash,
    hash_bytes,
    reader_of,
)
from keel.domain.digest import Digest
from keel.errors import Conflict, NotFound, StoreError

__all__ = ["LocalArtifactStore"]

#: Objects are never modified in place; read-only files make an accidental write fail loudly.
OBJECT_MODE: Final = 0o444
#: Filesystems without hard links (FAT, some FUSE mounts) answer link() with these.
_NO_LINKS: Final = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP})


class LocalArtifactStore(ArtifactStore):
    """Content-addressed objects in a local folder (created if missing)."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        with store_errors(f"cannot create the artifact folder {self.root}"):
            self._objects.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalArtifactStore({self.url!r})"

    def path_of(self, digest: Digest) -> Path:
        """Where the object lives (whether or not it exists)."""
        return self._objects / digest.hex[:2] / digest.hex[2:]

    # --- writing ------------------------------------------------------------------------

    def put_file(self, path: Path, *, progress: ProgressCallback | None = None) -> PutResult:
        with Path(path).open("rb", buffering=0) as source:
            return self._put(source.readinto, progress)

    def put_stream(
        self, stream: BinaryIO, *, progress: ProgressCallback | None = None
    ) -> PutResult:
        return self._put(reader_of(stream), progress)

    def _put(self, read_into: ReadInto, progress: ProgressCallback | None) -> PutResult:
        temp = TempFile(self._tmp, "put-")
        try:
            with temp:
                digest, size = copy_and_hash(
                    read_into, temp.write, flush=temp.flush, progress=progress
                )
                temp.sync()
            existed = self._place(temp.path, digest)
        finally:
            # Gone already after a successful place; after a failure, the partial file.
            temp.path.unlink(missing_ok=True)
        return PutResult(digest=digest, size=size, existed=existed)

    def _place(self, temp: Path, digest: Digest) -> bool:
        """Link the finished temp file into place; True if the object was already there."""
        final = self.path_of(digest)
        with store_errors(f"cannot store {digest} at {final}"):
            temp.chmod(OBJECT_MODE)
            self._make_fanout(final.parent)
            while True:
                try:
                    os.link(temp, final)
                except FileExistsError:
                    try:
                        # Fresh mtime: gc's grace period now protects the object we just
                        # promised the caller is stored.
                        os.utime(final)
                    except FileNotFoundError:
                        continue  # gc removed it in between: place ours after all
                    except PermissionError:
                        pass  # owned by another user of a shared folder; cannot touch
                    return True
                except OSError as exc:
                    if exc.errno not in _NO_LINKS:
                        raise
                    # No hard links here: replace (atomic; clobbering is harmless, as
                    # an existing file has the same bytes).
                    existed = final.exists()
                    temp.replace(final)
                    fsync_dir(final.parent)
                    return existed
                fsync_dir(final.parent)
                return False

    def create_document(self, name: str, data: bytes) -> None:
        final = self.root / check_document_name(name)
        with store_errors(f"cannot store the document {final}"):
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = self._tmp / f"doc-{uuid.uuid4().hex}"
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OBJECT_MODE)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                try:
                    # link() never replaces: the first writer of a name wins, whole.
                    os.link(temp, final)
                except FileExistsError:
                    raise Conflict(f"the document {final} exists already") from None
                fsync_dir(final.parent)
            finally:
                temp.unlink(missing_ok=True)

    def read_document(self, name: str) -> bytes:
        path = self.root / check_document_name(name)
        try:
            with store_errors(f"cannot read the document {path}"):
                return path.read_bytes()
        except StoreError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                raise NotFound(f"no document {path}") from None
            raise

    def list_documents(self, folder: str) -> list[str]:
        path = self.root / check_document_name(f"{folder}/x").rsplit("/", 1)[0]
        try:
            with os.scandir(path) as entries:
                names = [entry.name for entry in entries if entry.is_file()]
        except FileNotFoundError:
            return []
        return [f"{folder}/{name}" for name in sorted(names)]

    def _make_fanout(self, folder: Path) -> None:
        try:
            folder.mkdir()
        except FileExistsError:
            return
        fsync_dir(self._objects)  # the new folder's entry must survive a crash too

    # --- reading ------------------------------------------------------------------------

    def get_file(
        self, digest: Digest, dest: Path, *, progress: ProgressCallback | None = None
    ) -> None:
        with self._read_direct(digest) as reader:
            write_verified(reader.readinto, digest, Path(dest), str(self.path_of(digest)), progress)

    def read_bytes(self, digest: Digest) -> bytes:
        with self._open(digest) as reader:
            data = reader.read()
        actual = hash_bytes(data)
        if actual != digest:
            raise corrupt(digest, str(self.path_of(digest)), actual)
        return data

    def verify(self, digest: Digest) -> None:
        with self._read_direct(digest) as reader:
            actual, _ = copy_and_hash(reader.readinto, None)
        if actual != digest:
            raise corrupt(digest, str(self.path_of(digest)), actual)

    def _open(self, digest: Digest) -> FileIO:
        try:
            return FileIO(self.path_of(digest), "rb")
        except FileNotFoundError:
            raise not_found(digest, self.url) from None

    def _read_direct(self, digest: Digest) -> DirectReader:
        try:
            return DirectReader(self.path_of(digest))
        except FileNotFoundError:
            raise not_found(digest, self.url) from None

    # --- listing and deleting -----------------------------------------------------------

    def exists(self, digest: Digest) -> bool:
        return self.path_of(digest).is_file()

    def info(self, digest: Digest) -> ObjectInfo:
        try:
            stat = self.path_of(digest).stat()
        except FileNotFoundError:
            raise not_found(digest, self.url) from None
        return ObjectInfo(digest=digest, size=stat.st_size, modified=_utc(stat.st_mtime))

    def iter_objects(self) -> Iterator[ObjectInfo]:
        """Every object, in digest order. Stray files that are not digests are skipped."""
        for fanout in sorted(os.scandir(self._objects), key=lambda entry: entry.name):
            if len(fanout.name) != 2 or not fanout.is_dir():
                continue
            for entry in sorted(os.scandir(fanout.path), key=lambda entry: entry.name):
                try:
                    digest = Digest.of_hex(fanout.name + entry.name)
                    stat = entry.stat()
                except (ValueError, FileNotFoundError):
                    continue  # not an object, or deleted while we listed
                yield ObjectInfo(digest=digest, size=stat.st_size, modified=_utc(stat.st_mtime))

    def delete(self, digest: Digest) -> None:
        try:
            self.path_of(digest).unlink()
        except FileNotFoundError:
            raise not_found(digest, self.url) from None

    def gc(self, keep: Set[Digest], *, grace: timedelta = timedelta(hours=1)) -> GcReport:
        cutoff = time.time() - grace.total_seconds()
        temp_removed = 0
        with os.scandir(self._tmp) as entries:
            for entry in entries:
                try:
                    if entry.is_file() and entry.stat().st_mtime < cutoff:
                        Path(entry.path).unlink()
                        temp_removed += 1
                except FileNotFoundError:
                    continue  # a put finished, or another gc got there first
        deleted: list[Digest] = []
        freed = kept = 0
        for info in list(self.iter_objects()):
            if info.digest in keep or info.modified.timestamp() >= cutoff:
                kept += 1
                continue
            size = self._delete_if_old(info.digest, cutoff)
            if size is None:
                kept += 1
            else:
                deleted.append(info.digest)
                freed += size
        return GcReport(
            deleted=deleted,
            freed_bytes=freed,
            kept=kept,
            temp_files_removed=temp_removed,
        )

    def _delete_if_old(self, digest: Digest, cutoff: float) -> int | None:
        """Delete the object unless a put touched it since we listed it; its size, or None.

        Moving it aside first makes the check race-free against `_place`: a put that
        touches the object before the move leaves a young mtime we see here (and we put
        the object back); one that comes after finds it gone and links its own copy.
        """
        path = self.path_of(digest)
        grave = self._tmp / f"gc-{uuid.uuid4().hex}"
        try:
            path.rename(grave)
        except FileNotFoundError:
            return None
        stat = grave.stat()
        if stat.st_mtime >= cutoff:
            with suppress(FileExistsError):  # a put already stored it again
                os.link(grave, path)
            grave.unlink()
            return None
        grave.unlink()
        return stat.st_size


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
