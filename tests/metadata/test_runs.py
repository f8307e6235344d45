"""Runs in the metadata store: the same semantics on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keel.domain.run import Metric, Run, RunArtifact, StepRecord, new_run_id
from keel.errors import ConfigError, Conflict, NotFound
from keel.metadata import SqlMetadataStore
from tests.metadata.helpers import digest_of

T0 = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)


def make_run(*, at: datetime = T0, host: str = "box", pid: int = 4242, **fields: object) -> Run:
    run = Run(
        id=new_run_id(at.timestamp()),
        status="running",
        started_at=at,
        heartbeat_at=at,
        user="ana",
        host=host,
        pid=pid,
        seed=7,
    )
    return replace(run, **fields)  # type: ignore[arg-type]


def points(key: str, *values: float, start: int = 0) -> list[Metric]:
    return [Metric(key, v, start + i, T0 + timedelta(seconds=i)) for i, v in enumerate(values)]


def test_start_get_list_keep_every_field(store: SqlMetadataStore) -> None:
    lineage: dict[str, Any] = {
        "git_commit": "a" * 40,
        "git_dirty": True,
        "git_diff_hash": "blake3:" + "b" * 64,
        "feature_code_hash": "blake3:" + "c" * 64,
        "training_code_hash": "blake3:" + "d" * 64,
        "environment": "blake3:" + "e" * 64,
    }
    first = store.runs.start(make_run(**lineage), params={"lr": "0.1"}, tags={"team": "ml"})
    second = store.runs.start(make_run(at=T0 + timedelta(minutes=1)))
    read = store.runs.get(first.id)
    assert read == first
    assert read.started_at.tzinfo is UTC
    assert read.git_dirty is True and read.seed == 7
    assert store.runs.params(first.id) == {"lr": "0.1"}
    assert store.runs.tags(first.id) == {"team": "ml"}
    assert [r.id for r in store.runs.list()] == [second.id, first.id]
    assert [r.id for r in store.runs.list(limit=1)] == [second.id]
    assert store.runs.list(status="completed") == []
    assert store.runs.count() == 2


def test_start_refuses_a_duplicate_id_and_an_unknown_dataset(store: SqlMetadataStore) -> None:
    run = store.runs.start(make_run())
    with pytest.raises(Conflict, match=run.id):
        store.runs.start(run)
    with pytest.raises(NotFound, match="dataset version"):
        store.runs.start(make_run(dataset=digest_of("no such dataset")))
    assert store.runs.count() == 1


def test_log_batch_writes_params_metrics_and_tags(store: SqlMetadataStore) -> None:
    run = store.runs.start(make_run())
    store.runs.log_batch(
        run.id,
        params={"depth": "6"},
        metrics=[*points("loss", 0.9, 0.5), *points("auc", 0.7)],
        tags={"stage": "a"},
    )
    store.runs.log_batch(run.id, metrics=points("loss", 0.3, start=2), tags={"stage": "b"})
    assert [(m.step, m.value) for m in store.runs.metrics(run.id, "loss")] == [
        (0, 0.9),
        (1, 0.5),
        (2, 0.3),
    ]
    assert [m.key for m in store.runs.metrics(run.id)] == ["auc", "loss", "loss", "loss"]
    summaries = {s.key: (s.last, s.step, s.count) for s in store.runs.metric_summaries(run.id)}
    assert summaries == {"auc": (0.7, 0, 1), "loss": (0.3, 2, 3)}
    assert store.runs.tags(run.id) == {"stage": "b"}  # tags: the later value wins
    assert store.runs.params(run.id) == {"depth": "6"}


def test_a_param_cannot_change_and_the_batch_is_all_or_nothing(store: SqlMetadataStore) -> None:
    run = store.runs.start(make_run(), params={"lr": "0.1"})
    store.runs.log_batch(run.id, params={"lr": "0.1", "depth": "3"})  # same value: fine
    with pytest.raises(Conflict) as caught:
        store.runs.log_batch(run.id, params={"new": "x", "lr": "0.2"}, metrics=points("loss", 1.0))
    assert "'lr'" in caught.value.message
    assert "'0.1'" in caught.value.message and "'0.2'" in caught.value.message
    assert store.runs.params(run.id) == {"depth": "3", "lr": "0.1"}
    assert store.runs.metrics(run.id) == []


def test_finish_writes_last_logs_and_closes_the_run(store: SqlMetadataStore) -> None:
    run = store.runs.start(make_run())
    ended = T0 + timedelta(seconds=90)
    done = store.runs.finish(
        run.id, "completed", ended_at=ended, params={"p": "1"}, metrics=points("m", 2.0)
    )
    assert done.status == "completed" and done.ended_at == ended
    assert done.duration() == timedelta(seconds=90)
    assert store.runs.get(run.id) == done
    assert store.runs.params(run.id) == {"p": "1"}
    assert len(store.runs.metrics(run.id)) == 1
    with pytest.raises(Conflict, match="finished as completed"):
        store.runs.log_batch(run.id, metrics=points("m", 3.0))
    with pytest.raises(Conflict):
        store.runs.finish(run.id, "failed", error="late")
    with pytest.raises(Conflict):
        store.runs.heartbeat(run.id)
    assert store.runs.get(run.id).status == "completed"


def test_failed_runs_keep_their_error(store: SqlMetadataStore) -> None:
    run = store.runs.start(make_run())
    failed = store.runs.finish(run.id, "failed", error="ValueError: bad input")
    assert store.runs.get(run.id).error == "ValueError: bad input" == failed.error
    assert [r.id for r in store.runs.list(status="failed")] == [run.id]


def test_unknown_run_ids_are_not_found(store: SqlMetadataStore) -> None:
    missing = new_run_id()
    for call in (
        lambda: store.runs.get(missing),
        lambda: store.runs.log_batch(missing, metrics=points("m", 1.0)),
        lambda: store.runs.finish(missing, "completed"),
        lambda: store.runs.heartbeat(missing),
        lambda: store.runs.params(missing),
        lambda: store.runs.metrics(missing),
        lambda: store.runs.steps(missing),
        lambda: store.runs.resolve(missing[:10]),
    ):
        with pytest.raises(NotFound):
            call()


def test_resolve_by_id_and_unique_prefix(store: SqlMetadataStore) -> None:
    a = store.runs.start(make_run())
    b = store.runs.start(make_run())  # same millisecond: the ids share 12 characters
    assert store.runs.resolve(a.id.upper()) == a
    assert store.runs.resolve(b.id[:20]) == b
    with pytest.raises(Conflict, match="several runs"):
        store.runs.resolve(a.id[:12])
    for bad in ("abc", "not-hex-at-all", "g" * 32):
        with pytest.raises(ConfigError):
            store.runs.resolve(bad)


def test_heartbeat_moves_forward(store: SqlMetadataStore) -> None:
    run = store.runs.start(make_run())
    store.runs.heartbeat(run.id, T0 + timedelta(minutes=5))
    assert store.runs.get(run.id).heartbeat_at == T0 + timedelta(minutes=5)


def test_reap_dead_fails_runs_whose_process_is_gone(store: SqlMetadataStore) -> None:
    now = T0 + timedelta(minutes=3)
    dead_here = store.runs.start(make_run(pid=111))
    alive_here = store.runs.start(make_run(pid=222, at=now - timedelta(minutes=1)))
    elsewhere_recent = store.runs.start(make_run(host="other", pid=111, at=now))
    elsewhere_silent = store.runs.start(make_run(host="other", pid=333))
    done = store.runs.start(make_run(pid=111))
    store.runs.finish(done.id, "completed")

    reaped = store.runs.reap_dead(now, "box", lambda pid: pid == 222, timeout=timedelta(minutes=2))

    assert {r.id for r in reaped} == {dead_here.id, elsewhere_silent.id}
    gone = store.runs.get(dead_here.id)
    assert gone.status == "failed" and gone.ended_at == now
    assert gone.error == "process 111 on box exited without finishing the run"
    silent = store.runs.get(elsewhere_silent.id)
    assert silent.status == "failed"
    assert silent.error is not None and "no heartbeat for over 2m" in silent.error
    assert store.runs.get(alive_here.id).status == "running"
    assert store.runs.get(elsewhere_recent.id).status == "running"
    assert store.runs.get(done.id).status == "completed"
    assert store.runs.reap_dead(now, "box", lambda pid: False, timeout=timedelta(hours=1)) == [
        store.runs.get(alive_here.id)
    ]


def test_artifacts_are_recorded_objects_held_by_the_run(store: SqlMetadataStore) -> None:
    run = store.runs.start(make_run())
    model = digest_of("model")
    with pytest.raises(NotFound, match="not recorded"):
        store.runs.add_artifact(run.id, RunArtifact("model", model, 10))
    store.artifacts.record(model, size=10, media_type="x", actor="ana")
    store.runs.add_artifact(run.id, RunArtifact("model", model, 10))
    store.runs.add_artifact(run.id, RunArtifact("model", model, 10))  # again: no change
    other = digest_of("other")
    store.artifacts.record(other, size=3, media_type="x", actor="ana")
    with pytest.raises(Conflict, match="'model'"):
        store.runs.add_artifact(run.id, RunArtifact("model", other, 3))
    assert store.runs.artifacts(run.id) == [RunArtifact("model", model, 10)]
    assert store.artifacts.holders(model) == [f"run:{run.id}/artifact/model"]
    assert store.artifacts.forget([model]) == 0


def test_steps_and_the_step_cache(store: SqlMetadataStore) -> None:
    first = store.runs.start(make_run())
    out1, out2 = digest_of("features-1"), digest_of("features-2")
    for digest in (out1, out2):
        store.artifacts.record(digest, size=5, media_type="x", actor="ana")
    assert store.runs.find_cached_step("k1") is None
    ran = StepRecord(first.id, "features", "k1", "ran", out1, 1.5)
    store.runs.record_step(ran)
    store.runs.record_step(StepRecord(first.id, "train", "k2", "cache_hit", None, 0.0))
    with pytest.raises(Conflict, match="'features'"):
        store.runs.record_step(ran)
    assert [s.step for s in store.runs.steps(first.id)] == ["features", "train"]
    assert store.runs.steps(first.id)[0] == ran
    cached = store.runs.find_cached_step("k1")
    assert cached is not None and cached.output == out1 and cached.run_id == first.id

    # A forced re-run replaces the cache entry; the old output stays held by its run only.
    second = store.runs.start(make_run())
    store.runs.record_step(StepRecord(second.id, "features", "k1", "ran", out2, 1.0))
    cached = store.runs.find_cached_step("k1")
    assert cached is not None and cached.output == out2
    assert store.artifacts.holders(out1) == [f"run:{first.id}/step/features"]
    assert store.artifacts.holders(out2) == [f"run:{second.id}/step/features", "step-cache:k1"]
    store.runs.finish(second.id, "completed")
    with pytest.raises(Conflict):
        store.runs.record_step(StepRecord(second.id, "train", "k2", "ran", out2, 1.0))


def test_a_step_recorded_outside_the_cache_leaves_its_entry(store: SqlMetadataStore) -> None:
    # `keel reproduce` rebuilds a run without replacing what the next `keel train` reuses.
    out1, out2 = digest_of("package-1"), digest_of("package-2")
    for digest in (out1, out2):
        store.artifacts.record(digest, size=5, media_type="x", actor="ana")
    trained = store.runs.start(make_run())
    store.runs.record_step(StepRecord(trained.id, "train", "k", "ran", out1, 1.0))
    rebuilt = store.runs.start(make_run())
    store.runs.record_step(StepRecord(rebuilt.id, "train", "k", "ran", out2, 1.0, cache=False))
    cached = store.runs.find_cached_step("k")
    assert cached is not None and cached.output == out1 and cached.run_id == trained.id
    assert [s.output for s in store.runs.steps(rebuilt.id)] == [out2]
    assert store.artifacts.holders(out2) == [f"run:{rebuilt.id}/step/train"]
