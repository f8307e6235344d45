"""What keel writes on the user's disk is theirs alone where it holds secrets (the metadata
database, its folder) and plain data, never executable, where it restores files."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel import Project
from tests.cli.conftest import Keel

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_init_creates_an_owner_only_state_folder_and_database(keel: Keel, tmp_path: Path) -> None:
    assert keel("init").code == 0

    assert _mode(tmp_path / ".keel") == 0o700
    assert _mode(tmp_path / ".keel" / "keel.db") == 0o600
    with Project.open(tmp_path) as project:
        project.metadata.artifacts.count()  # a connection in WAL mode: -wal and -shm exist
        beside = [tmp_path / ".keel" / f"keel.db-{end}" for end in ("wal", "shm")]
        assert all(path.exists() for path in beside)
        assert [_mode(path) for path in beside] == [0o600, 0o600]


def test_a_database_elsewhere_gets_an_owner_only_folder(
    keel: Keel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert keel("init").code == 0
    database = tmp_path / "shared" / "meta" / "keel.db"
    monkeypatch.setenv("KEEL_DB_URL", f"sqlite:///{database}")

    assert keel("status").code == 0

    assert (_mode(database.parent), _mode(database)) == (0o700, 0o600)


def test_an_existing_readable_database_is_tightened_on_open(keel: Keel, tmp_path: Path) -> None:
    assert keel("init").code == 0
    database = tmp_path / ".keel" / "keel.db"
    with sqlite3.connect(database) as conn:  # as an older keel left it: 0644, with a WAL
        conn.execute("PRAGMA journal_mode = WAL")
    for path in (database, *database.parent.glob("keel.db-*")):
        path.chmod(0o644)

    status = keel("status", "--json")

    assert status.code == 0, status.out + status.err
    assert _mode(database) == 0o600
    assert all(_mode(path) == 0o600 for path in database.parent.glob("keel.db-*"))
    assert not [w for w in status.json()["warnings"] if "metadata database" in w]


def test_artifacts_get_writes_a_plain_file(keel: Keel, tmp_path: Path) -> None:
    assert keel("init").code == 0
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    digest = keel("artifacts", "put", script, "--json").json()["digest"]

    restored = tmp_path / "restored.sh"
    assert keel("artifacts", "get", digest, restored).code == 0

    assert _mode(restored) == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_status_warns_of_a_readable_database_another_user_owns(keel: Keel, tmp_path: Path) -> None:
    assert keel("init").code == 0
    database = tmp_path / ".keel" / "keel.db"
    database.chmod(0o644)
    os.chown(database, 12345, 12345)  # not ours: keel must not change it, only say so

    status = keel("status", "--json")

    assert _mode(database) == 0o644
    assert any(
        f"metadata database file {database} may be read by other users (mode 0644" in warning
        for warning in status.json()["warnings"]
    )


def test_the_spool_and_dead_letter_files_are_owner_only(tmp_path: Path) -> None:
    """Spooled and refused predictions carry the requests' inputs: nobody else's to read."""
    import dataclasses

    from keel.metadata import open_metadata_store
    from keel.predlog.spool import Spool
    from keel.predlog.writer import StoredPredictionLog
    from tests.predlog.support import make_batch

    store = open_metadata_store(f"sqlite:///{tmp_path / 'keel.db'}")
    try:
        spool, dead = tmp_path / "spool", tmp_path / "dead-letter"
        log = StoredPredictionLog(
            store.predictions, flush_interval=0.05, spool=Spool(spool), dead_letter=dead
        )
        batch = make_batch(3, seed=1)
        refused = dataclasses.replace(  # no store holds an integer beyond 64 bits
            batch, inputs={**batch.inputs, "distance": [1, 2**70, 3]}
        )
        log.submit(refused)
        log.close(timeout=60)
    finally:
        store.close()

    assert _mode(spool) == 0o700
    assert all(_mode(path) == 0o600 for path in spool.iterdir())
    letters = list(dead.glob("*.jsonl"))
    assert letters and (_mode(dead), _mode(letters[0])) == (0o700, 0o600)
