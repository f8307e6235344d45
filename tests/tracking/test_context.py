"""The RunContext: buffering, flushing, failure, validation, threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keel.errors import ConfigError, Conflict
from keel.metadata import SqlMetadataStore
from keel.project import Project
from keel.tracking import Tracker
from tests.tracking.conftest import FakeClock


def spy_batches(store: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the size of every batch the tracker writes (log_batch or finish)."""
    sizes: list[int] = []
    runs = store.runs

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        def spy(*args: Any, **kwargs: Any) -> Any:
            sizes.append(
                len(kwargs.get("params") or {})
                + len(kwargs.get("metrics") or ())
                + len(kwargs.get("tags") or {})
            )
            return method(*args, **kwargs)

        return spy

    monkeypatch.setattr(runs, "log_batch", wrap(runs.log_batch))
    monkeypatch.setattr(runs, "finish", wrap(runs.finish))
    return sizes


def tracker(store: SqlMetadataStore, clock: FakeClock, **options: Any) -> Tracker:
    options.setdefault("heartbeat_seconds", None)
    return Tracker(store, user="ana", clock=clock, **options)


def test_logs_are_buffered_until_n_items(
    store: SqlMetadataStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = spy_batches(store, monkeypatch)
    with tracker(store, clock, flush_items=5).start_run() as run:
        for i in range(4):
            run.log_metric("loss", 1.0 / (i + 1))
        assert batches == []
        assert store.runs.metrics(run.id) == []
        run.log_param("lr", 0.1)  # the fifth item
        assert batches == [5]
        assert len(store.runs.metrics(run.id)) == 4
        run.log_metric("loss", 0.1)
    assert batches == [5, 1]  # the rest goes with finish
    assert [m.step for m in store.runs.metrics(run.id, "loss")] == [0, 1, 2, 3, 4]
    assert store.runs.get(run.id).status == "completed"


def test_logs_are_flushed_after_t_seconds(
    store: SqlMetadataStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = spy_batches(store, monkeypatch)
    with tracker(store, clock, flush_seconds=1.0).start_run() as run:
        run.log_metric("loss", 0.5)
        run.set_tag("phase", "warmup")
        clock.advance(0.5)
        run.log_metric("loss", 0.4)
        assert batches == []
        clock.advance(0.5)
        run.log_metric("loss", 0.3)  # one second since the start: all four go
        assert batches == [4]
        assert store.runs.tags(run.id) == {"phase": "warmup"}
        run.flush()
        assert batches == [4, 0]  # a heartbeat with nothing to write


def test_failure_marks_the_run_failed_and_reraises(
    store: SqlMetadataStore, clock: FakeClock
) -> None:
    track = tracker(store, clock)
    with pytest.raises(ZeroDivisionError), track.start_run() as run:
        run.log_metric("loss", 0.5)
        _ = 1 / 0
    failed = store.runs.get(run.id)
    assert failed.status == "failed"
    assert failed.error == "ZeroDivisionError: division by zero"
    assert len(store.runs.metrics(run.id)) == 1  # what was logged before the error is kept
    with pytest.raises(Conflict, match="finished as failed"):
        run.log_metric("loss", 0.1)


def test_params_are_immutable(store: SqlMetadataStore, clock: FakeClock) -> None:
    with tracker(store, clock).start_run(params={"lr": 0.1, "depth": 6}) as run:
        assert run.params == {"lr": 0.1, "depth": 6}
        run.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(Conflict) as caught:
            run.log_param("lr", 0.2)
        assert "'lr'" in caught.value.message
        assert "'0.1'" in caught.value.message and "'0.2'" in caught.value.message
        with pytest.raises(Conflict):
            run.log_params({"new": 1, "depth": 7})
    assert store.runs.params(run.id) == {"depth": "6", "lr": "0.1"}


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (float("nan"), "finite real number, got nan"),
        (float("inf"), "finite real number, got inf"),
        (True, "got bool"),
        ("0.5", "got str"),
        (None, "got NoneType"),
        ([1.0], "got list"),
        (np.bool_(True), "got bool"),
    ],
)
def test_metric_values_must_be_finite_reals(
    store: SqlMetadataStore, clock: FakeClock, value: object, rule: str
) -> None:
    with tracker(store, clock).start_run() as run:
        with pytest.raises(ConfigError, match=rule) as caught:
            run.log_metric("val_auc", value)
        assert "'val_auc'" in caught.value.message
    assert store.runs.metrics(run.id) == []


@pytest.mark.parametrize("key", ["", "x" * 251, "bad*key", "tab\tkey", 5])
def test_keys_are_checked(store: SqlMetadataStore, clock: FakeClock, key: Any) -> None:
    with tracker(store, clock).start_run() as run:
        logs: list[Callable[[], None]] = [
            lambda: run.log_metric(key, 1.0),
            lambda: run.log_param(key, 1),
            lambda: run.set_tag(key, "x"),
        ]
        for log in logs:
            with pytest.raises(ConfigError, match="key"):
                log()
    assert store.runs.metrics(run.id) == [] and store.runs.params(run.id) == {}


def test_values_that_are_accepted_and_how_they_are_stored(
    store: SqlMetadataStore, clock: FakeClock
) -> None:
    with tracker(store, clock).start_run(seed=np.int64(11)) as run:  # type: ignore[arg-type]
        assert run.seed == 11
        run.log_metric("a/b.c-d e_f", np.float32(0.5), step=np.int64(3))  # type: ignore[arg-type]
        run.log_metric("count", np.int64(7))
        run.log_params({"s": "text", "n": None, "b": False, "i": np.int32(3), "f": 0.25})
        with pytest.raises(ConfigError, match="param 'l'"):
            run.log_params({"ok": 1, "l": [1, 2]})
        with pytest.raises(ConfigError, match="step"):
            run.log_metric("m", 1.0, step=-1)
        with pytest.raises(ConfigError, match="step"):
            run.log_metric("m", 1.0, step=True)
    params = store.runs.params(run.id)
    assert params == {"s": "text", "n": "null", "b": "false", "i": "3", "f": "0.25"}
    assert [(m.key, m.value, m.step) for m in store.runs.metrics(run.id)] == [
        ("a/b.c-d e_f", 0.5, 3),
        ("count", 7.0, 0),
    ]


def test_a_seed_is_drawn_and_recorded_when_none_is_given(
    store: SqlMetadataStore, clock: FakeClock
) -> None:
    with tracker(store, clock).start_run() as run:
        assert isinstance(run.seed, int)
    assert store.runs.get(run.id).seed == run.seed
    with pytest.raises(ConfigError, match="seed"):
        tracker(store, clock).start_run(seed="7")  # type: ignore[arg-type]


@pytest.mark.load
def test_threads_log_concurrently(any_store: SqlMetadataStore, clock: FakeClock) -> None:
    threads, per_thread = 6, 400
    with tracker(any_store, clock, flush_items=97).start_run() as run:

        def work(n: int) -> None:
            for i in range(per_thread):
                run.log_metric(f"t{n}", float(i))
                if i % 50 == 0:
                    run.set_tag(f"t{n}", str(i))
            run.log_param(f"t{n}", n)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    summaries = any_store.runs.metric_summaries(run.id)
    assert [(s.count, s.step, s.last) for s in summaries] == [(400, 399, 399.0)] * threads
    assert len(any_store.runs.params(run.id)) == threads
    assert any_store.runs.tags(run.id) == {f"t{n}": "350" for n in range(threads)}


def test_the_heartbeat_thread_flushes_a_silent_run(
    store: SqlMetadataStore, clock: FakeClock
) -> None:
    with tracker(store, clock, heartbeat_seconds=0.05).start_run() as run:
        run.log_metric("loss", 0.5)  # the fake clock never moves: only the heartbeat writes
        deadline = time.monotonic() + 10
        while not store.runs.metrics(run.id):
            assert time.monotonic() < deadline, "the heartbeat never flushed"
            time.sleep(0.02)
        assert store.runs.get(run.id).heartbeat_at != run.run.heartbeat_at


def test_finish_is_idempotent_and_outside_with(store: SqlMetadataStore, clock: FakeClock) -> None:
    run = tracker(store, clock).start_run()
    run.log_metric("m", 1.0)
    first = run.finish()
    assert run.finish() == first == run.run
    assert first.status == "completed" and len(store.runs.metrics(run.id)) == 1


def test_artifacts_through_the_project(tmp_path: Path) -> None:
    project = Project.init(tmp_path / "p", env={"KEEL_USER": "ana"})
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    with project, project.start_run(params={"lr": 0.1}) as run:
        stored = run.log_artifact(model, "model")
        notes = run.log_artifact(b"some notes", "notes.txt")
        assert project.metadata.runs.artifacts(run.id) == [stored, notes]
        assert project.artifacts.read_bytes(notes.digest) == b"some notes"
        assert project.metadata.artifacts.get(notes.digest).media_type == "text/plain"
        assert project.metadata.artifacts.holders(stored.digest) == [f"run:{run.id}/artifact/model"]
        with pytest.raises(ConfigError, match="artifact key"):
            run.log_artifact(b"x", "")
    with pytest.raises(Conflict):
        run.log_artifact(b"late", "late")
