"""The prediction log's spool: logged predictions on local disk, between a request and the store.

One spool per serving process, in `serving.log.spool_dir` (`.keel/spool` by default):

    <owner>.lock              held with an exclusive fcntl lock while its process lives
    <owner>.<n>.spool         segments, appended in order; <owner> is "<pid>-<random hex>"

A segment is a sequence of records, each `length (4 bytes LE) | crc32 (4 bytes LE) |
payload`: a record cut short by a crash (SIGKILL, power loss) or damaged on disk fails its
length or checksum, and reading stops there, dropping that tail with a warning; it never
makes replay fail. Appends from concurrent requests share one fsync (group commit): a
request waits until an fsync that started after its append has finished.

What a spool holds is replayed into the store by the log's writer: its own segments once
the store takes rows again, and the segments of processes that died (their lock is free),
on start and now and then. Rows are written with their prediction ids, which the store
keeps unique, so replaying a segment twice (a crash between the store's commit and the
segment's removal) neither duplicates nor fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson

from keel.errors import StoreError

__all__ = ["DeadSpool", "Spool", "decode_batch", "encode_batch", "read_records"]

_log = logging.getLogger(__name__)

_HEADER: Final = struct.Struct("<II")
#: A segment is closed and a new one started beyond this size (bytes), so that what the
#: store has taken can be deleted while traffic continues.
SEGMENT_BYTES: Final = 64 * 1024 * 1024
#: A record longer than this is damage, not data (a request's rows are bounded far below).
_MAX_RECORD: Final = 1 << 30
_JSON_OPTIONS: Final = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def encode_batch(batch: Any) -> bytes:
    """A `PredictionBatch` as one record's payload (JSON)."""
    # Written by hand, not with keel.serial: every answered request passes here, and a dict
    # literal is several times as fast as a TypeAdapter (benchmarks/serialisation.py).
    document = {
        "ids": list(batch.ids),
        "at": batch.at.isoformat(),
        "model": batch.model,
        "version": batch.version,
        "slot": batch.slot,
        "inputs": {name: list(values) for name, values in batch.inputs.items()},
        "outputs": {name: list(values) for name, values in batch.outputs.items()},
        "latency_ms": batch.latency_ms,
        "client_id": batch.client_id,
        "shadow_of": None if batch.shadow_of is None else list(batch.shadow_of),
    }
    try:
        return orjson.dumps(document, option=_JSON_OPTIONS, default=str)
    except (TypeError, ValueError):
        # orjson refuses integers beyond 64 bits; such a row must still reach the store,
        # which decides (and dead-letters it if it cannot hold it).
        return json.dumps(document, default=str).encode()


def decode_batch(payload: bytes) -> dict[str, Any]:
    """A record's payload as the keyword arguments of a `PredictionBatch`."""
    # By hand, as encode_batch: a TypeAdapter would take several times as long to replay.
    try:
        document: dict[str, Any] = orjson.loads(payload)
    except orjson.JSONDecodeError:
        document = json.loads(payload)
    document["at"] = datetime.fromisoformat(document["at"])
    return document


def read_records(path: Path) -> Iterator[bytes]:
    """The payloads of a segment, in order, up to the first torn or damaged record."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    offset = 0
    while offset < len(data):
        if offset + _HEADER.size > len(data):
            _dropped(path, offset, len(data), "a cut header")
            return
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        if length > _MAX_RECORD or start + length > len(data):
            _dropped(path, offset, len(data), "a cut record")
            return
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            _dropped(path, offset, len(data), "a checksum mismatch")
            return
        offset = start + length
        if payload:  # empty records are probes of a spool's health, not data
            yield payload


def _dropped(path: Path, offset: int, size: int, why: str) -> None:
    _log.warning(
        "prediction spool %s: %s at byte %d; the last %d bytes (a record cut by a crash) "
        "are skipped",
        path,
        why,
        offset,
        size - offset,
    )


def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _lock(path: Path) -> int | None:
    """An exclusive lock on `path` (created if missing), or None if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class _Segment:
    path: Path
    fd: int
    size: int = 0
    last_seq: int = 0  # the newest batch (log sequence number) appended to it
    rows: int = 0
    disk_rows: int = 0  # rows the log does not hold in memory
    replay: bool = False  # holds rows the store may not have: replay before deleting


@dataclass(frozen=True)
class DeadSpool:
    """The segments of a process that is gone, locked by whoever replays them."""

    owner: str
    lock_path: Path
    lock_fd: int
    segments: list[Path]

    def remove(self) -> None:
        """Delete the segments (all replayed), then the lock file, then let go of it."""
        for segment in self.segments:
            segment.unlink(missing_ok=True)
        self.lock_path.unlink(missing_ok=True)
        os.close(self.lock_fd)

    def release(self) -> None:
        """Let go without deleting (replay failed; someone retries later)."""
        os.close(self.lock_fd)


class Spool:
    """This process's spool. Thread-safe; `append` never waits for the disk, `sync` does."""

    def __init__(self, folder: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = folder
        self._segment_bytes = segment_bytes
        try:
            # Owner only: the spooled rows carry the requests' inputs (its files are 0600).
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.owner = f"{os.getpid()}-{secrets.token_hex(4)}"
            self._lock_path = folder / f"{self.owner}.lock"
            lock_fd = _lock(self._lock_path)
        except OSError as exc:
            raise StoreError(
                f"cannot use the prediction spool folder {folder}: {exc}",
                hint="serving.log.spool_dir must name a local folder this process may write",
            ) from exc
        assert lock_fd is not None  # a fresh random name: nobody else holds it
        self._lock_fd = lock_fd
        self._mutex = threading.Condition()
        self._index = 0
        self._closed: list[_Segment] = []
        self._current = self._open_segment()
        self._end = 0  # bytes ever appended (a logical offset: survives truncation)
        self._synced = 0  # every byte up to this logical offset is on disk
        self._syncing = False
        self._shut = False  # closed: the log's writer may still be finishing a round
        self.error: str | None = None  # the last write or fsync failure, until one succeeds

    def _open_segment(self) -> _Segment:
        self._index += 1
        path = self.folder / f"{self.owner}.{self._index:06d}.spool"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return _Segment(path, fd)

    # --- appending ------------------------------------------------------------------------

    def append(self, payload: bytes, *, seq: int, rows: int, disk_only: bool) -> int:
        """Append one record; returns the offset to `sync` to. `disk_only`: the rows are not
        kept in memory too, so the segment must be replayed. `StoreError` if the write fails
        (nothing was appended then, as far as a reader can tell: a partial record is torn)."""
        record = _frame(payload)
        with self._mutex:
            if self._shut:
                raise StoreError(f"the prediction spool in {self.folder} is closed")
            segment = self._current
            try:
                _write_all(segment.fd, record)
            except OSError as exc:
                self._failed("write", exc)
                # Whatever part was written is a torn record: start a fresh segment so that
                # later records are not hidden behind it.
                with contextlib.suppress(OSError):
                    self._rotate(sync=False)
                raise StoreError(
                    f"cannot write the prediction spool {segment.path}: {exc}",
                    hint="free disk space or fix serving.log.spool_dir",
                ) from exc
            segment.size += len(record)
            segment.last_seq = max(segment.last_seq, seq)
            segment.rows += rows
            if disk_only:
                segment.replay = True
                segment.disk_rows += rows
            self._end += len(record)
            end = self._end
            if segment.size >= self._segment_bytes:
                self._rotate()
            return end

    def _rotate(self, *, sync: bool = True) -> None:
        """Close the current segment (made durable first) and start the next."""
        old = self._current
        if sync:
            os.fsync(old.fd)
        self._current = self._open_segment()
        self._closed.append(old)
        self._synced = max(self._synced, self._end)

    def sync(self, end: int) -> None:
        """Return once every byte up to `end` is on disk. One caller fsyncs for all who wait;
        those arriving meanwhile are covered by the next fsync. `StoreError` if it fails."""
        with self._mutex:
            while self._synced < end and not self._shut:
                if self._syncing:
                    self._mutex.wait()
                    continue
                self._syncing = True
                target, fd = self._end, self._current.fd
                self._mutex.release()
                try:
                    os.fdatasync(fd)
                except OSError as exc:
                    failure: OSError | None = exc
                else:
                    failure = None
                finally:
                    self._mutex.acquire()
                    self._syncing = False
                    self._mutex.notify_all()
                if failure is not None:
                    self._failed("fsync", failure)
                    raise StoreError(
                        f"cannot fsync the prediction spool {self._current.path}: {failure}",
                        hint="free disk space or fix serving.log.spool_dir",
                    ) from failure
                self._synced = max(self._synced, target)
                self.error = None

    def probe(self) -> bool:
        """Append and fsync an empty record: is the spool writable now? (Readiness asks
        this while an earlier write failed, so a recovered disk is noticed without traffic.)"""
        try:
            end = self.append(b"", seq=0, rows=0, disk_only=False)
            self.sync(end)
        except StoreError:
            return False
        return True

    def _failed(self, what: str, exc: OSError) -> None:
        self.error = f"{what} failed: {exc}"

    # --- the writer's bookkeeping ---------------------------------------------------------

    @property
    def disk_rows(self) -> int:
        """Rows only the spool holds, to replay into the store (an upper bound: a segment
        marked for replay counts every row it holds)."""
        with self._mutex:
            return sum(s.disk_rows for s in [*self._closed, self._current])

    def mark_for_replay(self) -> None:
        """Every segment is to be replayed: the log dropped from memory rows that these
        segments hold (a store outage in durable mode)."""
        with self._mutex:
            if self._shut:
                return
            for segment in [*self._closed, self._current]:
                if segment.size:
                    segment.replay = True
                    segment.disk_rows = segment.rows

    def settle(self, durable_seq: int) -> None:
        """Forget what the store has: segments holding only batches up to `durable_seq`
        (and nothing to replay) are deleted, or truncated if current."""
        with self._mutex:
            if self._shut:
                return
            keep = []
            for segment in self._closed:
                if not segment.replay and segment.last_seq <= durable_seq:
                    os.close(segment.fd)
                    segment.path.unlink(missing_ok=True)
                else:
                    keep.append(segment)
            self._closed = keep
            current = self._current
            if current.size and not current.replay and current.last_seq <= durable_seq:
                try:
                    os.ftruncate(current.fd, 0)
                except OSError as exc:
                    _log.warning("could not truncate the prediction spool: %s", exc)
                    return
                current.size = current.rows = current.disk_rows = 0
                self._synced = max(self._synced, self._end)

    def take_replay(self) -> list[Path]:
        """The segments to replay, oldest first; the current one is closed first if it is
        among them (new records go to a new segment)."""
        with self._mutex:
            if self._shut:
                return []
            if self._current.replay and self._current.size:
                self._rotate()
            return [s.path for s in self._closed if s.replay]

    def replayed(self, path: Path) -> None:
        """A segment's records are all in the store: delete it."""
        with self._mutex:
            if self._shut:
                return
            for segment in self._closed:
                if segment.path == path:
                    self._closed.remove(segment)
                    os.close(segment.fd)
                    path.unlink(missing_ok=True)
                    return

    def close(self) -> bool:
        """fsync and close; empty segments are deleted. True if rows remain to replay (the
        next start, or another replica, replays them: the lock is released)."""
        with self._mutex:
            if self._shut:
                return False
            self._shut = True
            self._mutex.notify_all()
            remaining = False
            for segment in [*self._closed, self._current]:
                try:
                    if segment.size:
                        os.fsync(segment.fd)
                finally:
                    os.close(segment.fd)
                if segment.size and segment.replay:
                    remaining = True
                else:
                    segment.path.unlink(missing_ok=True)
            self._closed = []
            if not remaining:
                self._lock_path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                _fsync_folder(self.folder)
            os.close(self._lock_fd)
            return remaining

    # --- other processes' spools ----------------------------------------------------------

    def dead_spools(self) -> Iterator[DeadSpool]:
        """Spools whose process is gone, each locked for the caller (who must `remove` or
        `release` it). Segments without a lock file are orphans of a crash during cleanup."""
        owners: dict[str, list[Path]] = {}
        try:
            entries = sorted(self.folder.iterdir())
        except OSError:
            return
        for entry in entries:
            if entry.suffix in (".lock", ".spool"):
                owner = entry.name.split(".", 1)[0]
                if owner != self.owner:
                    bucket = owners.setdefault(owner, [])
                    if entry.suffix == ".spool":
                        bucket.append(entry)
        for owner, segments in owners.items():
            lock_path = self.folder / f"{owner}.lock"
            try:
                fd = _lock(lock_path)
            except OSError:
                continue
            if fd is None:
                continue  # alive: its owner replays its own
            yield DeadSpool(owner, lock_path, fd, sorted(segments))
