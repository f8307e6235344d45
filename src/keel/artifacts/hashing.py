"""BLAKE3 hashing for the artifact stores: whole buffers, files, and hash-while-copying.

Every store names objects with `hash_*` here, so a digest computed on put, on get and in
`verify` is always the same function of the bytes.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Final

import blake3

from keel.artifacts.base import ProgressCallback
from keel.domain.digest import Digest

__all__ = [
    "CHUNK_SIZE",
    "ReadInto",
    "Write",
    "copy_and_hash",
    "hash_bytes",
    "hash_file",
    "new_hasher",
    "reader_of",
]

#: Bytes per read/hash/write step. Measured on the 2-core benchmark machine: multi-threaded
#: BLAKE3 runs at ~5 GB/s on 1-4 MiB updates but falls back to single-thread speed
#: (~2.7 GB/s) on 8 MiB and larger ones, and 4 MiB keeps memory per transfer at 8 MiB.
CHUNK_SIZE: Final = 4 * 1024 * 1024

#: During a copy, ask the OS to start writing dirty pages out every this many bytes, so
#: the final fsync has little left to do and the disk works while we hash.
FLUSH_EVERY: Final = 64 * 1024 * 1024

#: Fills the buffer with up to len(buffer) bytes and returns how many; 0 means end of input.
ReadInto = Callable[[memoryview], int]
#: Consumes all of the given bytes (must not keep a reference to the view).
Write = Callable[[memoryview], object]


def new_hasher() -> Any:
    """A BLAKE3 hasher that spreads large updates over all cores."""
    return blake3.blake3(max_threads=blake3.blake3.AUTO)


def hash_bytes(data: bytes | bytearray | memoryview) -> Digest:
    """The digest of a buffer."""
    hasher = new_hasher()
    hasher.update(data)
    return Digest.of_hex(hasher.hexdigest())


def hash_file(path: Path, *, chunk_size: int = CHUNK_SIZE) -> Digest:
    """The digest of a file, read in chunks.

    Chunked reads rather than `update_mmap`: mapped pages count towards the process's
    resident memory, which would grow with the file.
    """
    with path.open("rb", buffering=0) as file:
        digest, _ = copy_and_hash(file.readinto, None, chunk_size=chunk_size)
    return digest


def reader_of(stream: BinaryIO) -> ReadInto:
    """A `ReadInto` over a binary stream, copying-free when the stream has `readinto`."""
    readinto = getattr(stream, "readinto", None)
    if readinto is None:

        def read_copy(view: memoryview) -> int:
            data = stream.read(len(view))
            view[: len(data)] = data
            return len(data)

        return read_copy

    def read_direct(view: memoryview) -> int:
        got = readinto(view)
        if got is None:
            # A non-blocking stream with nothing ready: ending here would store a
            # truncated object under a valid digest.
            raise ValueError("put_stream needs a blocking stream; readinto() returned None")
        return int(got)

    return read_direct


def _fill(read_into: ReadInto, view: memoryview) -> int:
    """Read until `view` is full or the input ends, so short reads (pipes, sockets)
    do not turn into many tiny hash and write steps."""
    filled = 0
    while filled < len(view):
        got = read_into(view[filled:])
        if not got:
            break
        filled += got
    return filled


def copy_and_hash(
    read_into: ReadInto,
    write: Write | None,
    *,
    flush: Callable[[], None] | None = None,
    progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
    flush_every: int = FLUSH_EVERY,
) -> tuple[Digest, int]:
    """Copy everything `read_into` yields to `write`, hashing on the way; (digest, size).

    Memory is two chunk buffers whatever the size; they are page-aligned (anonymous
    mmaps), as direct I/O needs. For inputs larger than one chunk the copy is a pipeline:
    while worker threads hash and write chunk i, the caller's thread reads chunk i+1
    (BLAKE3, file reads and writes all release the GIL). `flush` (an fdatasync, typically)
    runs on a third worker every `flush_every` bytes. `write` may run on a worker thread.
    """
    hasher = new_hasher()
    buffers = (mmap.mmap(-1, chunk_size), mmap.mmap(-1, chunk_size))
    filled = _fill(read_into, memoryview(buffers[0]))
    if filled < chunk_size:
        # Everything fits in one chunk: no threads for small objects.
        chunk = memoryview(buffers[0])[:filled]
        hasher.update(chunk)
        if write is not None and filled:
            write(chunk)
        if progress is not None and filled:
            progress(filled)
        return Digest.of_hex(hasher.hexdigest()), filled

    size = 0
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="keel-copy") as workers:
        flushing: Future[None] | None = None
        unflushed = 0
        index = 0
        while filled:
            chunk = memoryview(buffers[index % 2])[:filled]
            steps: list[Future[Any]] = [workers.submit(hasher.update, chunk)]
            if write is not None:
                steps.append(workers.submit(write, chunk))
            index += 1
            # The other buffer's chunk is fully hashed and written (we waited for it below),
            # so it can take the next read while this one is processed.
            filled = _fill(read_into, memoryview(buffers[index % 2]))
            for step in steps:
                step.result()
            size += len(chunk)
            if progress is not None:
                progress(len(chunk))
            unflushed += len(chunk)
            idle = flushing is None or flushing.done()
            if flush is not None and unflushed >= flush_every and idle:
                if flushing is not None:
                    flushing.result()  # surface a failed flush now
                flushing = workers.submit(flush)
                unflushed = 0
        if flushing is not None:
            flushing.result()
    return Digest.of_hex(hasher.hexdigest()), size
