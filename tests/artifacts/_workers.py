"""Code the artifact tests run in other processes (spawned, or `python -m` subprocesses).

Kept apart from the test modules so a child imports keel and nothing of pytest.

    python -m tests.artifacts._workers roundtrip ROOT SOURCE DEST   put, get back; JSON out
    python -m tests.artifacts._workers slow-put ROOT                a long put, to be killed
"""

from __future__ import annotations

import io
import json
import os
import random
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from keel.artifacts import LocalArtifactStore, open_artifact_store

MIB = 1024 * 1024
#: The killed put's stream: this many blocks of 1 MiB, slow enough to be caught midway.
SLOW_BLOCKS = 512
SLOW_DELAY_S = 0.005


def put_in_child(
    url: str, options: Mapping[str, str], data: bytes, times: int, barrier: str, parties: int
) -> tuple[int, list[str]]:
    """Wait until `parties` processes are here, then put `data` `times` times.

    Returns this process's id and '<digest> <existed>' per put. The barrier is a folder
    where each process leaves a file: a pool may otherwise run both calls in one worker.
    """
    store = open_artifact_store(url, options)
    folder = Path(barrier)
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(list(folder.iterdir())) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError("the other processes never arrived")
        time.sleep(0.005)
    results = [store.put_bytes(data) for _ in range(times)]
    return os.getpid(), [f"{result.digest} {result.existed}" for result in results]


def slow_block() -> bytes:
    return random.Random(20240607).randbytes(MIB)


class SlowStream(io.RawIOBase):
    """SLOW_BLOCKS MiB of a repeated block, pausing SLOW_DELAY_S at each block start."""

    def __init__(self) -> None:
        self._block = slow_block()
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._position >= SLOW_BLOCKS * MIB:
            return 0
        offset = self._position % MIB
        if offset == 0:
            time.sleep(SLOW_DELAY_S)
        size = min(len(buffer), MIB - offset)
        buffer[:size] = self._block[offset : offset + size]
        self._position += size
        return size


def _peak_rss_bytes() -> int:
    """This process's peak resident memory.

    Not getrusage's ru_maxrss: Linux carries it across exec, so a child started by a big
    pytest process would report the parent's size. VmHWM belongs to the new address space.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: list[str]) -> None:
    command, root = argv[0], Path(argv[1])
    store = LocalArtifactStore(root)
    if command == "roundtrip":
        source, dest = Path(argv[2]), Path(argv[3])
        put_started = time.perf_counter()
        stored = store.put_file(source)
        get_started = time.perf_counter()
        store.get_file(stored.digest, dest)
        done = time.perf_counter()
        report = {
            "digest": str(stored.digest),
            "size": stored.size,
            "put_s": get_started - put_started,
            "get_s": done - get_started,
            "peak_rss_bytes": _peak_rss_bytes(),
        }
        print(json.dumps(report))
    elif command == "slow-put":
        store.put_stream(SlowStream())  # type: ignore[arg-type]
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
