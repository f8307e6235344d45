"""The prediction log: the writer thread, back-pressure, retries, compaction and reading,
on SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from keel.domain.prediction import LoggedPrediction, PredictionLogStats, PredictionSegment
from keel.errors import ConfigError, Conflict, StoreError
from keel.metadata import SqlMetadataStore, open_metadata_store
from keel.metadata.base import Predictions
from keel.predlog import read as reading
from keel.predlog.ids import new_prediction_id
from keel.predlog.log import PredictionBatch
from keel.predlog.writer import StoredPredictionLog
from keel.project import Project
from tests.predlog.support import MODEL, make_batch

ROOT = Path(__file__).parents[2]
HOUR = timedelta(hours=1)


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


@pytest.fixture
def project(metadata_url: str, tmp_path: Path) -> Iterator[Project]:
    env = {"KEEL_USER": "ana", "KEEL_DB_URL": metadata_url}
    opened = Project.init(tmp_path / "project", name="logs", env=env)
    try:
        yield opened
    finally:
        opened.close()


def _rows(batch: PredictionBatch) -> list[dict[str, Any]]:
    return [
        {
            "id": prediction_id,
            "inputs": {name: values[i] for name, values in batch.inputs.items()},
            "outputs": {name: values[i] for name, values in batch.outputs.items()},
        }
        for i, prediction_id in enumerate(batch.ids)
    ]


def _logged(store: Predictions, batches: Sequence[PredictionBatch]) -> None:
    with StoredPredictionLog(store, flush_interval=0.05) as log:
        for batch in batches:
            log.submit(batch)


# --- writing ------------------------------------------------------------------------------


def test_flush_makes_every_submitted_row_durable(store: SqlMetadataStore) -> None:
    log = StoredPredictionLog(store.predictions, flush_interval=10)  # only flush writes
    batches = [make_batch(4, seed=i) for i in range(5)]
    for batch in batches:
        log.submit(batch)
    assert log.buffered == 20
    assert store.predictions.get(batches[0].ids[0]) is None  # not yet: the interval is long
    log.flush(timeout=30)
    assert log.buffered == 0 and log.written == 20
    for batch in batches:
        for expected in _rows(batch):
            found = store.predictions.get(expected["id"])
            assert found is not None
            assert found.inputs == expected["inputs"] and found.outputs == expected["outputs"]
            assert (found.model, found.version, found.slot) == (MODEL, 1, "production")
            assert found.at == batch.at and found.client_id == batch.client_id
            assert found.latency_ms == 1.5
    log.close()


def test_rows_become_durable_within_the_flush_interval(store: SqlMetadataStore) -> None:
    with StoredPredictionLog(store.predictions, flush_interval=0.1) as log:
        batch = make_batch(2)
        submitted = time.monotonic()
        log.submit(batch)
        while store.predictions.get(batch.ids[-1]) is None:
            assert time.monotonic() - submitted < 5, "not written without a flush"
            time.sleep(0.01)


def test_close_flushes_and_later_submits_raise(store: SqlMetadataStore) -> None:
    log = StoredPredictionLog(store.predictions, flush_interval=10)
    batch = make_batch(3)
    log.submit(batch)
    log.close()
    assert all(store.predictions.get(i) is not None for i in batch.ids)
    with pytest.raises(StoreError, match="closed"):
        log.submit(make_batch(1))
    log.close()  # idempotent


def test_shadow_rows_keep_the_id_they_shadow(store: SqlMetadataStore) -> None:
    answered = make_batch(2)
    shadow = PredictionBatch(
        ids=[new_prediction_id() for _ in range(2)],
        at=answered.at,
        model=MODEL,
        version=2,
        slot="shadow",
        inputs=answered.inputs,
        outputs=answered.outputs,
        latency_ms=3.0,
        shadow_of=answered.ids,
    )
    _logged(store.predictions, [answered, shadow])
    found = store.predictions.get(shadow.ids[1])
    assert found is not None and found.shadow_of == answered.ids[1] and found.slot == "shadow"


def test_a_malformed_batch_is_refused_at_submit(store: SqlMetadataStore) -> None:
    good = make_batch(2)
    with StoredPredictionLog(store.predictions) as log:
        with pytest.raises(ValueError, match="3 ids"):
            log.submit(
                PredictionBatch(
                    ids=[*good.ids, new_prediction_id()],
                    at=good.at,
                    model=MODEL,
                    version=1,
                    slot="production",
                    inputs=good.inputs,
                    outputs=good.outputs,
                    latency_ms=1.0,
                )
            )
        with pytest.raises(ValueError, match="timezone-aware"):
            log.submit(
                PredictionBatch(
                    ids=good.ids,
                    at=datetime(2026, 1, 1),
                    model=MODEL,
                    version=1,
                    slot="production",
                    inputs=good.inputs,
                    outputs=good.outputs,
                    latency_ms=1.0,
                )
            )
        assert log.buffered == 0


def test_a_row_logged_twice_is_kept_once(store: SqlMetadataStore) -> None:
    batch = make_batch(3)
    rows = [
        LoggedPrediction(i, batch.at, MODEL, 1, "production", {"x": 1}, {"y": 2}, 1.0)
        for i in batch.ids
    ]
    store.predictions.add(rows)
    store.predictions.add(rows)  # a retry after a commit whose answer was lost
    assert store.predictions.stats()[0].rows == 3


def test_a_prediction_made_on_a_whole_second_is_in_the_window_starting_then(
    store: SqlMetadataStore,
) -> None:
    # SQLite compares times as text: a time stored without its ".000000" would sort before
    # the window's bound and drop out of it.
    at = datetime(2013, 7, 1, 12, 0, 0, tzinfo=UTC)
    row = LoggedPrediction(new_prediction_id(), at, MODEL, 1, "production", {"x": 1}, {"y": 2}, 1.0)
    store.predictions.add([row])
    found = store.predictions.window(MODEL, at, at + timedelta(seconds=1))
    assert [r.id for r in found] == [row.id]
    assert store.predictions.window(MODEL, at - timedelta(seconds=1), at) == []


# --- back-pressure and store failures (a store double: the real ones cannot be made slow) -


class _Gate(Predictions):
    """Writes rows to a list; can be held shut (writes wait) or made to fail."""

    def __init__(self, failures: int = 0) -> None:
        self.rows: list[LoggedPrediction] = []
        self.open = threading.Event()
        self.open.set()
        self.failures = failures
        self.calls = 0

    def add(self, rows: Sequence[LoggedPrediction]) -> None:
        self.calls += 1
        self.open.wait()
        if self.failures:
            self.failures -= 1
            raise StoreError("database is locked")
        self.rows.extend(rows)

    def get(self, prediction_id: str) -> LoggedPrediction | None:
        raise NotImplementedError

    def window(self, *args: Any, **kwargs: Any) -> list[LoggedPrediction]:
        raise NotImplementedError

    def closed(self, before: datetime) -> list[tuple[str, int, int]]:
        raise NotImplementedError

    def oldest(self, *args: Any, **kwargs: Any) -> list[LoggedPrediction]:
        raise NotImplementedError

    def add_segment(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def segments(self, **kwargs: Any) -> list[PredictionSegment]:
        raise NotImplementedError

    def segments_holding(self, prediction_id: str) -> list[PredictionSegment]:
        raise NotImplementedError

    def stats(self) -> list[PredictionLogStats]:
        raise NotImplementedError


def test_a_full_buffer_makes_submit_wait_and_drops_nothing() -> None:
    gate = _Gate()
    gate.open.clear()  # the store hangs: nothing gets written
    log = StoredPredictionLog(gate, flush_interval=0.01, max_buffer=10)
    log.submit(make_batch(6))
    log.submit(make_batch(4))  # exactly full
    with pytest.raises(StoreError, match="full"):
        log.submit(make_batch(1), timeout=0.2)
    waited: list[float] = []
    late = make_batch(3)

    def submit_late() -> None:
        started = time.monotonic()
        log.submit(late)
        waited.append(time.monotonic() - started)

    waiter = threading.Thread(target=submit_late)
    waiter.start()
    time.sleep(0.3)
    assert not waited, "submit returned while the buffer was full"
    gate.open.set()
    waiter.join(timeout=10)
    assert waited and waited[0] >= 0.25
    log.close()
    assert len(gate.rows) == 13
    assert {r.id for r in gate.rows} >= set(late.ids)


def test_a_batch_larger_than_the_buffer_still_goes_in() -> None:
    gate = _Gate()
    with StoredPredictionLog(gate, flush_interval=0.01, max_buffer=5) as log:
        log.submit(make_batch(12))
    assert len(gate.rows) == 12


def test_store_errors_are_retried_and_nothing_is_lost(caplog: pytest.LogCaptureFixture) -> None:
    gate = _Gate(failures=3)
    log = StoredPredictionLog(gate, flush_interval=0.01)
    batches = [make_batch(2, seed=i) for i in range(3)]
    for batch in batches:
        log.submit(batch)
    log.flush(timeout=10)
    assert log.failures == 3 and log.last_error is None
    assert [r.id for r in gate.rows] == [i for b in batches for i in b.ids]  # order kept
    assert "database is locked" in caplog.text
    log.close()


def test_flush_and_close_time_out_naming_the_store_error() -> None:
    gate = _Gate(failures=10**6)
    log = StoredPredictionLog(gate, flush_interval=0.01)
    log.submit(make_batch(4))
    with pytest.raises(StoreError, match="database is locked"):
        log.flush(timeout=0.3)
    assert log.buffered == 4 and log.last_error is not None
    with pytest.raises(StoreError, match="4 rows"):
        log.close(timeout=0.3)


def test_commits_are_split_in_chunks() -> None:
    gate = _Gate()
    with StoredPredictionLog(gate, flush_interval=10, commit_rows=5) as log:
        for seed in range(4):
            log.submit(make_batch(3, seed=seed))
    assert len(gate.rows) == 12 and gate.calls >= 3


# --- reading and compaction ---------------------------------------------------------------


def _window(project: Project, **options: Any) -> list[dict[str, Any]]:
    start = datetime(2000, 1, 1, tzinfo=UTC)
    end = datetime.now(UTC) + HOUR
    table = reading.read_window(project, MODEL, start, end, **options)
    return table.to_pylist()  # type: ignore[no-any-return]


def _log_old_and_new(project: Project) -> tuple[list[PredictionBatch], list[PredictionBatch]]:
    now = datetime.now(UTC)
    old = [make_batch(7, at=now - 3 * HOUR + timedelta(seconds=i), seed=i) for i in range(20)]
    old.append(make_batch(5, at=now - 2 * HOUR, version=2, slot="canary", seed=99))
    new = [make_batch(4, at=now - timedelta(seconds=i), seed=100 + i) for i in range(3)]
    _logged(project.metadata.predictions, [*old, *new])
    return old, new


def test_read_window_types_columns_and_filters(project: Project) -> None:
    old, _ = _log_old_and_new(project)
    table = reading.read_window(
        project, MODEL, datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + HOUR
    )
    assert table.num_rows == 20 * 7 + 5 + 3 * 4
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("inputs.distance").type == pa.int64()
    assert table.schema.field("inputs.dep_delay").type == pa.float64()
    assert table.schema.field("inputs.weekend").type == pa.bool_()
    assert table.schema.field("outputs.probability").type == pa.float64()
    assert table.column_names[:8] == list(reading.BASE_COLUMNS.names)
    times = table["at"].to_pylist()
    assert times == sorted(times)
    canary = _window(project, slot="canary")
    assert len(canary) == 5 and {r["version"] for r in canary} == {2}
    assert len(_window(project, version=1)) == 20 * 7 + 3 * 4
    only = reading.read_window(
        project,
        MODEL,
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime.now(UTC),
        columns=["id", "outputs.prediction"],
    )
    assert only.column_names == ["id", "outputs.prediction"]
    # [start, end): the end is excluded
    at = old[0].at
    edge = reading.read_window(project, MODEL, at, at + timedelta(seconds=1))
    assert set(edge["id"].to_pylist()) == set(old[0].ids)
    with pytest.raises(ConfigError, match="unknown column"):
        reading.read_window(project, MODEL, at, at + HOUR, columns=["nope"])
    assert reading.read_window(project, "other", at, at + HOUR).num_rows == 0


def test_compaction_moves_closed_rows_into_segments_and_reads_stay_the_same(
    project: Project,
) -> None:
    old, new = _log_old_and_new(project)
    before = _window(project)
    logged = {i: project.metadata.predictions.get(i) for b in [*old, *new] for i in b.ids}

    report = reading.compact(project, older_than=HOUR, segment_rows=50)
    assert report.rows == 20 * 7 + 5
    assert [s.rows for s in report.segments] == [50, 50, 40, 5]  # v1 in three, v2 in one
    stats = {(s.model, s.version): s for s in reading.stats(project)}
    assert stats[(MODEL, 1)].rows == 12 and stats[(MODEL, 1)].segment_rows == 140
    assert stats[(MODEL, 2)].rows == 0 and stats[(MODEL, 2)].segments == 1

    assert _window(project) == before
    for prediction_id, row in logged.items():
        assert row is not None
        found = reading.get(project, prediction_id)
        assert found is not None, prediction_id
        assert found.to_dict()["inputs"]["time_hour"].startswith(row.inputs["time_hour"][:19])
        assert {**found.to_dict(), "inputs": None} == {**row.to_dict(), "inputs": None}
        assert {k: v for k, v in found.inputs.items() if k != "time_hour"} == {
            k: v for k, v in row.inputs.items() if k != "time_hour"
        }
    # Segments are held: garbage collection keeps them.
    project.gc(grace=timedelta(0))
    assert reading.get(project, old[0].ids[0]) is not None
    # Nothing left to compact; a second run changes nothing.
    assert reading.compact(project, older_than=HOUR).rows == 0
    assert _window(project) == before


def test_get_refuses_what_is_not_an_id_and_misses_unknown_ids(project: Project) -> None:
    with pytest.raises(ConfigError, match="not a prediction id"):
        reading.get(project, "42")
    assert reading.get(project, new_prediction_id()) is None


def test_a_segment_whose_rows_changed_is_not_indexed(project: Project) -> None:
    now = datetime.now(UTC)
    _logged(project.metadata.predictions, [make_batch(6, at=now - 2 * HOUR)])
    predictions = project.metadata.predictions
    rows = predictions.oldest(MODEL, 1, now - HOUR, limit=100)
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    segment = reading.write_segment(project, rows[:4], {})
    # As if a late row had arrived in the segment's id range after it was read:
    short = dataclasses.replace(segment, rows=3)
    with pytest.raises(Conflict, match="3 rows but 4 matched"):
        predictions.add_segment(short, before=now - HOUR, actor="ana")
    assert predictions.segments() == []
    assert predictions.stats()[0].rows == 6
    predictions.add_segment(segment, before=now - HOUR, actor="ana")
    assert predictions.stats()[0].rows == 2 and len(predictions.segments()) == 1
    with pytest.raises(Conflict, match="already indexed"):
        predictions.add_segment(segment, before=now - HOUR, actor="ana")


def test_a_compaction_that_fails_midway_loses_and_duplicates_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, _ = _log_old_and_new(project)
    before = _window(project)
    from keel.metadata.sql import predictions as sql_predictions

    # 1. killed after storing a segment object, before indexing it
    def crash(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(type(project.metadata.predictions), "add_segment", crash)
        with pytest.raises(KeyboardInterrupt):
            reading.compact(project, older_than=HOUR, segment_rows=50)
    assert project.metadata.predictions.segments() == []
    assert _window(project) == before

    # 2. killed inside the indexing transaction, after the segment row, before the delete
    def failing_delete(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(sql_predictions, "delete", failing_delete)
        with pytest.raises(KeyboardInterrupt):
            reading.compact(project, older_than=HOUR, segment_rows=50)
    assert project.metadata.predictions.segments() == []
    assert _window(project) == before

    # The orphaned object (the same bytes both times: content-addressed) is unheld, so
    # gc takes it; compaction then succeeds.
    assert len(project.gc(grace=timedelta(0)).deleted) == 1
    assert reading.compact(project, older_than=HOUR, segment_rows=50).rows == 145
    after = _window(project)
    assert after == before
    assert len({r["id"] for r in after}) == len(after)
    assert reading.get(project, old[3].ids[2]) is not None


@pytest.mark.slow
@pytest.mark.load
def test_a_killed_compaction_process_loses_and_duplicates_nothing(
    project: Project, metadata_url: str
) -> None:
    now = datetime.now(UTC)
    batches = [make_batch(50, at=now - HOUR + timedelta(seconds=i), seed=i) for i in range(60)]
    _logged(project.metadata.predictions, batches)
    before = _window(project)
    env = {**os.environ, "KEEL_USER": "ana", "KEEL_DB_URL": metadata_url}
    command = [sys.executable, "-m", "tests.predlog.support", "compact"]
    folder = str(project.settings.project_dir)
    for delay in (0.8, 1.6):
        with subprocess.Popen(
            [*command, folder, "20"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        ) as child:
            assert child.stdout is not None and child.stdout.readline().strip() == "started"
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        assert _window(project) == before  # same rows, same values, each once
    done = reading.compact(project, older_than=timedelta(seconds=1), segment_rows=500)
    assert _window(project) == before
    assert sum(s.segment_rows for s in reading.stats(project)) == 3000
    assert done.rows <= 3000


def test_servers_sharing_a_store_compact_one_at_a_time(project: Project) -> None:
    """`compact(exclusive=True)`, what each server runs every few minutes: while one holds
    the store's compaction lease (a PostgreSQL advisory lock, a file lock beside a SQLite
    database), another skips and says why; once it is released, the next one compacts."""
    old, _ = _log_old_and_new(project)
    env = {"KEEL_USER": "ana", "KEEL_DB_URL": project.settings.db_url}
    other = Project.open(project.settings.project_dir, env=env)
    try:
        with other.metadata.predictions.compaction_lease() as held:
            assert held
            skipped = reading.compact(project, older_than=HOUR, exclusive=True)
            assert skipped.rows == 0 and skipped.skipped == "another process holds the lease"
            assert skipped.to_dict()["skipped"] == skipped.skipped
            with project.metadata.predictions.compaction_lease() as again:
                assert not again
        done = reading.compact(project, older_than=HOUR, exclusive=True)
    finally:
        other.close()
    assert done.skipped is None and "skipped" not in done.to_dict()
    assert done.rows == sum(len(batch.ids) for batch in old)
