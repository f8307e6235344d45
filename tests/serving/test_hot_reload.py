"""Hot reload on a real server: promotion and rollback reach it within seconds while clients
keep sending, without one failed request; a version that cannot load leaves the old one
serving and raises the alarm (readiness, /metrics, the audit log)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keel.artifacts.local import LocalArtifactStore
from keel.domain.identity import Actor
from keel.release import promote, rollback
from tests.serving.support import (
    MODEL,
    Client,
    eventually,
    metric,
    oip_request,
    open_project,
    records,
    serve,
    serve_process,
    served_copy,
    set_alias,
)

#: How long after an alias move every new request must be answered by the new holder.
SWITCH_WITHIN_S = 5.0


@dataclass(frozen=True)
class Reply:
    sent: float  # time.monotonic() when the request was sent
    received: float
    status: int
    version: int | None
    error: str | None = None


class Load:
    """Client threads, each on its own keep-alive connection, sending one-row requests
    (OIP and /predict in turn) back to back until stopped."""

    def __init__(self, url: str, rows: list[dict[str, Any]], threads: int = 4) -> None:
        self._url, self._rows = url, rows
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.replies: list[Reply] = []
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"load-{n}", daemon=True)
            for n in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads)

    def _run(self, number: int) -> None:
        with Client(self._url) as client:
            count = 0
            while not self._stop.is_set():
                row = self._rows[(number * 13 + count) % len(self._rows)]
                sent = time.monotonic()
                try:
                    if count % 2:
                        answer = client.post("/predict", {"records": [row]})
                        version = answer.json().get("version") if answer.status == 200 else None
                    else:
                        answer = client.post(f"/v2/models/{MODEL}/infer", oip_request([row]))
                        ok = answer.status == 200
                        version = int(answer.json()["model_version"]) if ok else None
                    reply = Reply(sent, time.monotonic(), answer.status, version, None)
                except Exception as exc:  # noqa: BLE001 - every failure is asserted on
                    reply = Reply(sent, time.monotonic(), 0, None, repr(exc))
                with self._lock:
                    self.replies.append(reply)
                count += 1

    def answered(self, version: int, *, since: float) -> int:
        with self._lock:
            return sum(1 for r in self.replies if r.version == version and r.sent >= since)


def _switch_delay(replies: list[Reply], started: float, done: float, old: int, new: int) -> float:
    """Seconds from the end of an alias move to the first answer from the new holder, after
    checking that no request sent after that answer arrived was answered by the old one."""
    window = [r for r in replies if r.sent >= started]
    first = min(r.received for r in window if r.version == new)
    late = [r for r in window if r.version == old and r.sent > first]
    assert not late, f"{len(late)} requests answered by v{old} after v{new} took over"
    return first - done


@pytest.mark.load
@pytest.mark.timed
def test_promotion_and_rollback_under_load_fail_no_request(
    trained_template: Path, tmp_path: Path
) -> None:
    folder = served_copy(
        trained_template,
        tmp_path / "flights",
        release={"approvals": {"required": 0}},
        reload_interval="200ms",
    )
    rows = records(trained_template, 100)
    with open_project(folder) as operator:
        set_alias(operator, "production", 1)
        # The server runs in its own process, as in production: the load's client threads
        # would otherwise compete with its reloader for one interpreter lock.
        with serve_process(folder, tmp_path / "serve.err") as (url, _):
            with Load(url, rows) as load:
                begun = time.monotonic()
                eventually(lambda: load.answered(1, since=begun) >= 20)

                promoted_at = time.monotonic()
                result = promote(
                    operator, f"{MODEL}@2", "production", actor=Actor("ana"), reason="better"
                )
                promoted = time.monotonic()
                assert result.outcome == "promoted", result
                eventually(lambda: load.answered(2, since=promoted_at) >= 20, timeout=30)

                rolled_back_at = time.monotonic()
                rollback(operator, MODEL, actor=Actor("oncall"), reason="test: error rate up")
                rolled_back = time.monotonic()
                eventually(lambda: load.answered(1, since=rolled_back_at) >= 20, timeout=30)
            with Client(url) as client:
                text = client.get("/metrics").text
        replies = sorted(load.replies, key=lambda r: r.sent)

    failed = [r for r in replies if r.status != 200]
    assert not failed, f"{len(failed)} of {len(replies)} requests failed, first: {failed[0]}"
    assert {r.version for r in replies} == {1, 2}
    first_move = [r for r in replies if r.sent < rolled_back_at]
    to_v2 = _switch_delay(first_move, promoted_at, promoted, old=1, new=2)
    to_v1 = _switch_delay(replies, rolled_back_at, rolled_back, old=2, new=1)
    assert to_v2 < SWITCH_WITHIN_S and to_v1 < SWITCH_WITHIN_S, (to_v2, to_v1)
    # One route switch per move; every request counted, none refused.
    assert metric(text, "keel_model_reloads_total", model=MODEL) == 2
    assert metric(text, "keel_requests_total") == len(replies)
    assert metric(text, "keel_request_errors_total") == 0


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(
    trained_template: Path, tmp_path: Path
) -> None:
    folder = served_copy(trained_template, tmp_path / "flights", reload_interval="200ms")
    row = records(trained_template, 1)[0]
    with open_project(folder) as project:
        set_alias(project, "production", 1)
        store = project.artifacts
        assert isinstance(store, LocalArtifactStore)
        package = store.path_of(project.metadata.models.get(MODEL, 2).package)
        original = package.read_bytes()
        package.chmod(0o644)
        package.write_bytes(b"not a model package" + original[19:])  # same size, other bytes

        with serve(project) as (url, app), Client(url) as client:
            set_alias(project, "production", 2)

            def failure() -> dict[str, Any] | None:
                document: dict[str, Any] = client.get("/v2/health/ready").json()
                return document if f"{MODEL}@2" in document["load_failures"] else None

            ready = eventually(failure)
            assert ready["ready"] is True  # the old version still serves
            assert ready["models"][MODEL]["production"] == 1
            assert ready["load_failures"] == [f"{MODEL}@2"]  # names only: unauthenticated
            assert "/" not in str(ready)  # no file paths from the server's disk
            error = app.state.failures[f"{MODEL}@2"]
            assert "is corrupt" in error, error

            answer = client.post("/predict", {"records": [row]})
            assert answer.status == 200 and answer.json()["version"] == 1
            text = client.get("/metrics").text
            assert metric(text, "keel_model_load_failures_total", model=MODEL, version="2") >= 1
            assert metric(text, "keel_model_served", version="1", slot="production") == 1
            assert metric(text, "keel_model_served", version="2") == 0

            events = project.metadata.audit.events(model=MODEL, kinds=["serving.load_failed"])
            assert len(events) == 1  # one alert per failing version, not one per retry
            assert events[0].version == 2 and events[0].actor.startswith("keel-serve@")
            assert events[0].reason == error[:500]

            # Repaired, the version loads the next time an alias moves.
            package.write_bytes(original)
            set_alias(project, "staging", 2)
            eventually(lambda: client.get("/v2/health/ready").json()["load_failures"] == [])
            answer = client.post("/predict", {"records": [row]})
            assert answer.status == 200 and answer.json()["version"] == 2
