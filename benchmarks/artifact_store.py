"""Artifact store throughput: keel's local store against the hashing floor and `dvc add`.

    python benchmarks/artifact_store.py [--size-mb 1024] [--repeat 3] [--pause 10]

On one file of random bytes (generated once, in a temp folder on the disk under test),
each round measures, in this order:
  1. keel put: LocalArtifactStore.put_file into a fresh store, fsync on (as in production)
  2. keel get: get_file of that object to a new file (verified, fsynced, renamed)
  3. disk floor: writing the same number of bytes from memory and fsyncing them, through
     the page cache and around it (O_DIRECT, as keel's local store writes)
  4. hashing floor: hashlib.sha256 (hashlib.file_digest), BLAKE3 on one thread and on all
  5. the peer: `dvc add` of the file in a fresh `git init` + `dvc init` repository
     (a subprocess, timed from start to exit; DVC_NO_ANALYTICS=1)
and prints the median of --repeat rounds: wall-clock seconds, and CPU seconds over all
threads and child processes (a step using much less CPU than wall time waits for the disk).

The page cache is warm: the source file stays in memory (the benchmark does not drop
caches). Writes go to the disk, and keel's are fsynced. `--pause` syncs and sleeps before
each writing step so each starts from a quiet disk; on burst-credited virtual disks the
first gigabyte after a pause can be much faster than the next.
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import blake3

from common import machine_summary
from keel.artifacts import LocalArtifactStore
from keel.domain.digest import Digest

MIB = 1024 * 1024
DVC = Path(sys.executable).parent / "dvc"


@dataclass(frozen=True)
class Measure:
    wall: float
    cpu: float


def measure(action: Callable[[], object]) -> Measure:
    """Wall time, and CPU time of this process's threads plus waited-for children."""
    before, started = os.times(), time.perf_counter()
    action()
    wall, after = time.perf_counter() - started, os.times()
    cpu = sum(after[:4]) - sum(before[:4])  # user, system, children user, children system
    return Measure(wall, cpu)


def make_source(path: Path, size_mb: int) -> None:
    with path.open("wb") as file:
        for _ in range(size_mb):
            file.write(os.urandom(MIB))
        file.flush()
        os.fsync(file.fileno())


def settle(pause: float) -> None:
    """Flush everything pending (deleted files, earlier writes), then wait."""
    os.sync()
    time.sleep(pause)


def disk_floor(path: Path, size_mb: int, *, direct: bool) -> None:
    """Write size_mb MiB from memory and fsync: what any durable put must at least pay,
    through the page cache or around it (O_DIRECT, as keel's local store writes)."""
    block = mmap.mmap(-1, 4 * MIB)  # page-aligned, as O_DIRECT needs
    block.write(os.urandom(4 * MIB))
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if direct else 0)
    fd = os.open(path, flags)
    try:
        for _ in range(size_mb // 4):
            os.write(fd, block)
        os.fsync(fd)
    finally:
        os.close(fd)


def dvc_add(work: Path, source: Path) -> Measure:
    """`dvc add` of `source` in a fresh repo; only the add is measured, not the set-up."""
    repo = work / "dvc-repo"
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    subprocess.run([str(DVC), "init", "-q"], cwd=repo, check=True, env=env)
    inside = repo / source.name
    source.rename(inside)  # same filesystem: the bytes stay put and stay cached
    try:
        return measure(
            lambda: subprocess.run(
                [str(DVC), "add", "-q", inside.name], cwd=repo, check=True, env=env
            )
        )
    finally:
        inside.rename(source)
        shutil.rmtree(repo)


def sha256_file(path: Path) -> None:
    with path.open("rb") as file:
        hashlib.file_digest(file, "sha256")


def blake3_file(path: Path, threads: int) -> None:
    hasher = blake3.blake3(max_threads=threads)
    hasher.update_mmap(path)
    hasher.hexdigest()


def one_round(
    work: Path, source: Path, args: argparse.Namespace, record: Callable[[str, Measure], None]
) -> None:
    store = LocalArtifactStore(work / "store")
    restored = work / "restored.bin"
    digest: list[Digest] = []

    settle(args.pause)
    record(PUT, measure(lambda: digest.append(store.put_file(source).digest)))
    settle(args.pause)
    record("keel get (verified, fsync)", measure(lambda: store.get_file(digest[0], restored)))
    restored.unlink()
    shutil.rmtree(store.root)

    floor = work / "floor.bin"
    for direct, name in ((False, "disk: write + fsync"), (True, "disk: O_DIRECT write + fsync")):
        settle(args.pause)
        record(name, measure(lambda: disk_floor(floor, args.size_mb, direct=direct)))  # noqa: B023 - called at once
        floor.unlink()
    record("sha256 (hashlib)", measure(lambda: sha256_file(source)))
    record("blake3, 1 thread", measure(lambda: blake3_file(source, 1)))
    record("blake3, all cores", measure(lambda: blake3_file(source, blake3.blake3.AUTO)))
    if not args.no_dvc:
        settle(args.pause)
        record(DVC_ADD, dvc_add(work, source))


PUT = "keel put (fsync)"
DVC_ADD = "dvc add"


def machine() -> str:
    return machine_summary(f"blake3 {blake3.__version__}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is shown")
    parser.add_argument("--pause", type=float, default=10.0, help="seconds between writes")
    parser.add_argument("--dir", type=Path, default=None, help="where to work (a temp dir)")
    parser.add_argument("--no-dvc", action="store_true", help="skip the dvc comparison")
    args = parser.parse_args()
    size = args.size_mb * MIB
    results: dict[str, list[Measure]] = {}

    def record(name: str, result: Measure) -> None:
        results.setdefault(name, []).append(result)
        rate = size / result.wall / 1e9
        print(f"  {name:<28} {result.wall:7.3f} s  {rate:6.2f} GB/s  cpu {result.cpu:6.2f} s")

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="keel-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        print(f"folder: {work}  file: {args.size_mb} MiB of random bytes")
        source = work / "data.bin"
        make_source(source, args.size_mb)
        for round_ in range(1, args.repeat + 1):
            print(f"round {round_}/{args.repeat}", flush=True)
            one_round(work, source, args, record)

    print(f"\nmedian of {args.repeat} rounds, {args.size_mb} MiB file, warm page cache:\n")
    print(f"| {'operation':<28} | seconds |  GB/s | cpu seconds |")
    print(f"| {'-' * 28} | ------: | ----: | ----------: |")
    medians: dict[str, float] = {}
    for name, runs in results.items():
        wall = medians[name] = statistics.median(run.wall for run in runs)
        cpu = statistics.median(run.cpu for run in runs)
        print(f"| {name:<28} | {wall:7.3f} | {size / wall / 1e9:5.2f} | {cpu:11.2f} |")
    if DVC_ADD in medians:
        ratio = medians[DVC_ADD] / medians[PUT]
        print(f"\nkeel put / dvc add throughput: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
