"""The S3 store when the service dies mid-transfer: moto's server in a process of its own,
killed (SIGKILL: connections reset, nothing flushed) while a large artifact goes up or
comes down, through the Project, with its metadata on SQLite and PostgreSQL.

A put that fails records nothing and the next attempt succeeds; a get that fails is a
StoreError naming the artifact and leaves nothing at (and nothing beside) the destination."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from keel.errors import StoreError
from keel.project import Project
from tests.fixtures.cli import Keel

pytestmark = [pytest.mark.s3, pytest.mark.load]

MIB = 1024 * 1024
BUCKET = "keel-faults"
#: Large enough that the transfer takes many chunks (CHUNK_SIZE is 4 MiB) and several parts.
SIZE = 40 * MIB


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MotoProcess:
    """moto's S3 server as a child process on a fixed port: killed and restarted at will."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=2).close()  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="k",
            aws_secret_access_key="s",
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)


@pytest.fixture
def moto() -> Iterator[MotoProcess]:
    server = MotoProcess(_free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def project(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    moto: MotoProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Project]:
    env = {
        "KEEL_USER": "ana",
        "KEEL_ARTIFACTS": f"s3://{BUCKET}/faults",
    }
    if request.param == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "NO_PROXY": "127.0.0.1,localhost",
    }.items():
        monkeypatch.setenv(name, value)
    with Project.init(tmp_path / "project", env=env) as opened:
        yield opened


def _killer(moto: MotoProcess, after: int) -> Callable[[int], None]:
    """A progress callback that kills the server once `after` bytes went through."""
    seen = 0

    def progress(done: int) -> None:
        nonlocal seen
        seen += done
        if seen >= after:
            moto.kill()

    return progress


def test_a_put_cut_by_the_service_dying_records_nothing_and_the_retry_succeeds(
    project: Project, moto: MotoProcess, tmp_path: Path
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(SIZE))

    with pytest.raises(StoreError) as failed:
        project.put_artifact(source, holder="test:put", progress=_killer(moto, 12 * MIB))

    assert f"cannot upload {source}" in failed.value.message  # names what was being stored
    assert project.metadata.artifacts.list() == []  # nothing recorded
    moto.start()  # back (empty: moto keeps nothing), and the same put again
    record = project.put_artifact(source, holder="test:put")
    assert [r.digest for r in project.metadata.artifacts.list()] == [record.digest]
    project.artifacts.verify(record.digest)
    assert project.verify_artifacts().ok


def test_a_get_cut_by_the_service_dying_names_the_artifact_and_leaves_no_file(
    project: Project, moto: MotoProcess, tmp_path: Path
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(SIZE))
    record = project.put_artifact(source, holder="test:get")
    folder = tmp_path / "restore"
    folder.mkdir()
    dest = folder / "model.bin"
    dest.write_bytes(b"the user's earlier copy")

    with pytest.raises(StoreError) as failed:
        project.get_artifact(record.digest, dest, progress=_killer(moto, 12 * MIB))

    assert str(record.digest) in failed.value.message
    assert dest.read_bytes() == b"the user's earlier copy"  # untouched, never partial
    assert sorted(p.name for p in folder.iterdir()) == ["model.bin"]  # no temp file left


def test_keel_artifacts_get_from_a_dead_service_exits_6_naming_the_artifact(
    project: Project, moto: MotoProcess, tmp_path: Path, keel: Keel, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "small.bin"
    source.write_bytes(os.urandom(100_000))
    record = project.put_artifact(source, holder="test:cli")
    monkeypatch.setenv("KEEL_ARTIFACTS", f"s3://{BUCKET}/faults")
    if project.metadata.backend == "postgresql":
        monkeypatch.setenv("KEEL_DB_URL", project.settings.db_url)
    moto.kill()
    dest = tmp_path / "out" / "small.bin"

    result = keel("-C", project.settings.project_dir, "artifacts", "get", str(record.digest), dest)

    assert result.code == 6, result.out + result.err
    assert f"cannot open {record.digest}" in result.err
    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []
