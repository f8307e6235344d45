"""The prediction log under faults: rows the store refuses, the spool (durable mode, store
outages, shutdown, replay after a crash), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from keel.domain.prediction import LoggedPrediction
from keel.errors import StoreError
from keel.metadata import SqlMetadataStore, open_metadata_store
from keel.predlog.log import DeadLettered, PredictionBatch, logged_predictions
from keel.predlog.spool import Spool, encode_batch, read_records
from keel.predlog.writer import StoredPredictionLog
from keel.serving.metrics import PredictionLogCollector, ServingMetrics
from tests.predlog.support import make_batch

pytestmark = pytest.mark.load


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keel' / 'metadata.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


@pytest.fixture
def store(metadata_url: str) -> Iterator[SqlMetadataStore]:
    opened = open_metadata_store(metadata_url)
    try:
        yield opened
    finally:
        opened.close()


def _with_values(batch: PredictionBatch, **columns: list[object]) -> PredictionBatch:
    return dataclasses.replace(batch, inputs={**batch.inputs, **columns})


def _dead_letters(folder: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted(folder.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


# --- rows the store refuses ---------------------------------------------------------------


def test_rows_the_store_refuses_are_set_aside_and_the_rest_is_written(
    store: SqlMetadataStore, metadata_url: str, tmp_path: Path
) -> None:
    """Rows PostgreSQL cannot hold (a client id with NUL, as `POST /predict {"id":
    "a\\u0000b"}` once sent) and a row no store can (an integer beyond 64 bits), sent
    straight to the log (not through the HTTP edge, which refuses NUL): the writer isolates
    them, sets them aside, and keeps writing everything else."""
    alerts: list[DeadLettered] = []
    dead = tmp_path / "dead-letter"
    log = StoredPredictionLog(
        store.predictions,
        flush_interval=0.05,
        spool=Spool(tmp_path / "spool"),
        dead_letter=dead,
        on_dead_letter=alerts.append,
    )
    metrics = ServingMetrics()
    metrics.include(PredictionLogCollector(log))
    before = [make_batch(4, seed=s) for s in range(3)]
    nul = dataclasses.replace(make_batch(3, seed=10), client_id="a\u0000b")
    big = _with_values(make_batch(6, seed=11), distance=[1, 2, 3, 4, 2**70, 6])
    after = [make_batch(5, seed=s) for s in range(20, 40)]
    for batch in [*before, nul, big]:
        log.submit(batch)
    log.flush(timeout=60)
    for batch in after:  # the log still works after the poison
        log.submit(batch)
    log.close(timeout=60)

    postgres = metadata_url.startswith("postgresql")
    refused = {big.ids[4], *(nul.ids if postgres else [])}
    everything = [i for b in [*before, nul, big, *after] for i in b.ids]
    assert all(store.predictions.get(i) is not None for i in everything if i not in refused)
    assert all(store.predictions.get(i) is None for i in refused)
    if not postgres:  # SQLite holds NUL in text: nothing to set aside there
        stored = store.predictions.get(nul.ids[0])
        assert stored is not None and stored.client_id == "a\u0000b"

    letters = {d["prediction"]["id"]: d for d in _dead_letters(dead)}  # type: ignore[index]
    assert set(letters) == refused
    assert letters[big.ids[4]]["prediction"]["inputs"]["distance"] == 2**70  # type: ignore[index]
    assert "64-bit" in str(letters[big.ids[4]]["error"])
    if postgres:
        assert letters[nul.ids[0]]["prediction"]["client_id"] == "a\u0000b"  # type: ignore[index]
        assert "NUL" in str(letters[nul.ids[0]]["error"])
    assert log.dead_lettered == len(refused)
    assert sum(a.rows for a in alerts) == len(refused)
    assert all(a.path is not None and a.path.parent == dead for a in alerts)
    text = metrics.render().decode()
    assert f"keel_prediction_log_dead_letter_rows_total {float(len(refused))}" in text


# --- durable mode and the spool -----------------------------------------------------------


class _Down:
    """A store that is down until `up` is set; then it writes to the real one."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.up = threading.Event()
        self.attempts = 0

    def add(self, rows: Sequence[LoggedPrediction]) -> None:
        self.attempts += 1
        if not self.up.is_set():
            raise StoreError("cannot use the metadata store: connection refused")
        self.real.add(rows)  # type: ignore[attr-defined]


def test_durable_submit_returns_once_the_rows_are_on_the_spool(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    down = _Down(store.predictions)
    spool = Spool(tmp_path / "spool")
    log = StoredPredictionLog(down, flush_interval=0.05, spool=spool, durable=True)  # type: ignore[arg-type]
    batches = [make_batch(3, seed=s) for s in range(8)]
    threads = [threading.Thread(target=log.submit, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Acknowledged while the store is down: every row is on disk, readable by anyone.
    on_disk = {
        i
        for path in sorted((tmp_path / "spool").glob("*.spool"))
        for payload in read_records(path)
        for i in json.loads(payload)["ids"]
    }
    assert on_disk == {i for b in batches for i in b.ids}
    down.up.set()
    log.close(timeout=60)
    assert all(store.predictions.get(i) is not None for b in batches for i in b.ids)
    assert not list((tmp_path / "spool").glob("*.spool"))  # nothing left to replay


@pytest.mark.parametrize("durability", ["buffered", "durable"])
def test_shutdown_during_an_outage_spills_to_the_spool_and_the_next_start_replays(
    store: SqlMetadataStore, tmp_path: Path, durability: str
) -> None:
    down = _Down(store.predictions)
    folder = tmp_path / "spool"
    log = StoredPredictionLog(
        down,  # type: ignore[arg-type]
        flush_interval=0.05,
        spool=Spool(folder),
        durable=durability == "durable",
    )
    batches = [make_batch(4, seed=s) for s in range(10)]
    for batch in batches:
        log.submit(batch)
    log.close(timeout=0.5)  # the store never answered: spilled, not lost, no error
    left = sorted(folder.iterdir())
    assert sorted(p.suffix for p in left) == [".lock", ".spool"]
    assert all(store.predictions.get(i) is None for b in batches for i in b.ids)

    # The next process (the store is back) replays the dead spool, then deletes it.
    with StoredPredictionLog(store.predictions, flush_interval=0.05, spool=Spool(folder)) as nxt:
        _wait_until_gone(nxt, left)
    assert all(store.predictions.get(i) is not None for b in batches for i in b.ids)
    assert not any(path.exists() for path in left)


def _wait_until_gone(log: StoredPredictionLog, paths: Sequence[Path]) -> None:
    deadline = time.monotonic() + 60
    while any(path.exists() for path in paths):
        assert time.monotonic() < deadline, "the dead spool was never replayed"
        log.flush(timeout=10)
        time.sleep(0.02)


def test_replay_is_idempotent_and_a_torn_last_record_is_dropped(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    """A crash after the store's commit and before the spool's removal replays rows the
    store already holds (kept once); a crash mid-append leaves a torn record (skipped)."""
    folder = tmp_path / "spool"
    folder.mkdir()
    batches = [make_batch(3, seed=s) for s in range(4)]
    store.predictions.add(
        [r for b in batches[:2] for r in logged_predictions(b)]
    )  # committed before the "crash"
    segment = folder / "4242-deadbeef.000001.spool"
    with segment.open("wb") as file:
        for batch in batches:
            payload = encode_batch(batch)
            file.write(struct.pack("<II", len(payload), zlib.crc32(payload)))
            file.write(payload)
        torn = encode_batch(make_batch(3, seed=99))
        file.write(struct.pack("<II", len(torn), 0) + torn[: len(torn) // 2])
    with StoredPredictionLog(store.predictions, flush_interval=0.05, spool=Spool(folder)) as log:
        _wait_until_gone(log, [segment])
    assert not segment.exists()
    ids = [i for b in batches for i in b.ids]
    assert all(store.predictions.get(i) is not None for i in ids)
    total = sum(s.rows for s in store.predictions.stats())
    assert total == len(ids)  # none twice, the torn one not at all


def test_a_live_process_spool_is_not_replayed_by_another(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    alive = Spool(folder)
    alive.append(encode_batch(make_batch(2)), seq=1, rows=2, disk_only=True)
    other = Spool(folder)
    assert list(other.dead_spools()) == []
    assert alive.close() is True  # rows left to replay: kept for the next start
    dead = list(other.dead_spools())
    assert [d.owner for d in dead] == [alive.owner]
    dead[0].release()
    other.close()


def test_a_spool_that_cannot_be_written_makes_the_log_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Durable mode with a full disk: submit fails (the caller answers 503), `refusing`
    says why (readiness fails), and a disk with room again is noticed by the next probe.
    (A full disk is simulated at the write call: filling a real one needs privileges.)"""
    spool = Spool(tmp_path / "spool")
    log = StoredPredictionLog(_Down(None), spool=spool, durable=True)  # type: ignore[arg-type]

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("keel.predlog.spool._write_all", full)
    with pytest.raises(StoreError, match="No space left"):
        log.submit(make_batch(2))
    assert log.refusing is not None and "No space left" in log.refusing
    assert log.buffered == 0  # not acknowledged, not kept
    monkeypatch.undo()
    log._last_probe = 0.0  # the next readiness check probes at once
    assert log.refusing is None
    log.submit(make_batch(2))
    log.close(timeout=0.2)


def test_concurrent_durable_submits_share_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: requests arriving while an fsync runs are covered by the next one, and
    none returns before an fsync that started after its append has finished."""
    import keel.predlog.spool as spool_module

    real = os.fdatasync
    syncs: list[float] = []

    def slow_fdatasync(fd: int) -> None:
        time.sleep(0.02)  # a slow disk, so that requests pile up behind each fsync
        real(fd)
        syncs.append(time.monotonic())

    monkeypatch.setattr(spool_module.os, "fdatasync", slow_fdatasync)
    store = _Down(None)
    log = StoredPredictionLog(store, spool=Spool(tmp_path / "spool"), durable=True)  # type: ignore[arg-type]
    returned: list[float] = []

    def request(seed: int) -> None:
        log.submit(make_batch(1, seed=seed))
        returned.append(time.monotonic())

    threads = [threading.Thread(target=request, args=(s,)) for s in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(returned) == 32
    assert len(syncs) < 32 / 2  # shared: far fewer fsyncs than requests
    assert min(syncs) <= min(returned)  # nobody was answered before an fsync finished
    log.close(timeout=0.2)
