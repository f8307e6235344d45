"""How a model's traffic is split on a real server: the canary answers its share of requests
(and /metrics counts exactly what clients saw), shadows score every request without ever
answering one, and their predictions reach the prediction log."""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from keel.predlog.ids import is_prediction_id
from keel.predlog.read import get
from tests.serving.support import (
    MODEL,
    Client,
    eventually,
    metric,
    oip_request,
    open_project,
    records,
    serve,
    served_copy,
    set_alias,
)

CANARY_SHARE = 0.2
REQUESTS = 1_000
THREADS = 4


def _send(client: Client, row: dict[str, Any], oip: bool) -> tuple[str, str, int]:
    """(protocol, slot, version) of one answered one-row request."""
    if oip:
        answer = client.post(f"/v2/models/{MODEL}/infer", oip_request([row]))
        assert answer.status == 200, answer.text
        document = answer.json()
        assert is_prediction_id(document["id"])
        return "oip", document["parameters"]["slot"], int(document["model_version"])
    answer = client.post("/predict", {"records": [row]})
    assert answer.status == 200, answer.text
    document = answer.json()
    return "records", document["slot"], document["version"]


@pytest.mark.slow  # 1,000 requests: about 14 s on two cores
def test_canary_share_holds_and_metrics_agree_with_clients(
    trained_template: Path, tmp_path: Path
) -> None:
    folder = served_copy(trained_template, tmp_path / "flights", canary_share=CANARY_SHARE)
    rows = records(trained_template, 50)
    seen: Counter[tuple[str, str, int]] = Counter()
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker(number: int, url: str) -> None:
        mine: Counter[tuple[str, str, int]] = Counter()
        try:
            with Client(url) as client:
                for i in range(REQUESTS // THREADS):
                    mine[_send(client, rows[(number + i) % len(rows)], oip=i % 2 == 0)] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)
        with lock:
            seen.update(mine)

    with open_project(folder) as project:
        set_alias(project, "production", 1)
        set_alias(project, "canary", 2)
        with serve(project) as (url, _), Client(url) as client:
            threads = [
                threading.Thread(target=worker, args=(n, url), name=f"client-{n}")
                for n in range(THREADS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=300)
            assert not failures, failures[0]
            text = client.get("/metrics").text

    assert sum(seen.values()) == REQUESTS
    # Each slot is answered by its alias's holder, and nothing else answers.
    assert {(slot, version) for _, slot, version in seen} == {("production", 1), ("canary", 2)}
    canary = sum(n for (_, slot, _), n in seen.items() if slot == "canary")
    expected = REQUESTS * CANARY_SHARE
    sigma = math.sqrt(REQUESTS * CANARY_SHARE * (1 - CANARY_SHARE))
    assert abs(canary - expected) < 4.5 * sigma, (canary, expected, sigma)

    # /metrics counts exactly what the clients saw, per version, slot and protocol.
    for (protocol, slot, version), count in seen.items():
        labels = {"model": MODEL, "version": str(version), "slot": slot}
        assert metric(text, "keel_requests_total", **labels, protocol=protocol) == count
    for slot, version in (("production", 1), ("canary", 2)):
        count = sum(n for (_, s, _), n in seen.items() if s == slot)
        labels = {"model": MODEL, "version": str(version), "slot": slot}
        assert metric(text, "keel_predictions_total", **labels) == count  # one row each
        assert metric(text, "keel_request_seconds_count", **labels) == count
        assert metric(text, "keel_model_served", **labels) == 1
    assert metric(text, "keel_requests_total") == REQUESTS
    assert metric(text, "keel_request_errors_total") == 0


def _key(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True)


def test_shadow_scores_every_request_and_never_answers(
    trained_template: Path, tmp_path: Path
) -> None:
    folder = served_copy(
        trained_template,
        tmp_path / "flights",
        release={"aliases": ["canary", "production", "challenger"]},
        shadow=["challenger"],
    )
    rows = records(trained_template, 40)
    pairs = [rows[i : i + 2] for i in range(0, len(rows), 2)]  # 20 requests of 2 rows
    start = datetime.now(UTC) - timedelta(seconds=1)
    answered: dict[str, dict[str, Any]] = {}  # prediction id -> its record and outputs

    with open_project(folder) as project:
        set_alias(project, "production", 1)
        set_alias(project, "challenger", 3)
        with serve(project) as (url, serving), Client(url) as client:
            ready = client.get("/v2/health/ready").json()
            assert ready["models"][MODEL]["shadow"] == {"challenger": 3}
            for number, pair in enumerate(pairs):
                if number % 2:
                    answer = client.post("/predict", {"records": pair})
                    assert answer.status == 200, answer.text
                    document = answer.json()
                    assert (document["version"], document["slot"]) == (1, "production")
                    for row, prediction in zip(pair, document["predictions"], strict=True):
                        answered[prediction["id"]] = {"record": row, **prediction}
                else:
                    answer = client.post(f"/v2/models/{MODEL}/infer", oip_request(pair))
                    assert answer.status == 200, answer.text
                    document = answer.json()
                    assert document["model_version"] == "1"
                    assert document["parameters"]["slot"] == "production"
                    outputs = {o["name"]: o["data"] for o in document["outputs"]}
                    ids = document["parameters"]["prediction_ids"]
                    for i, (row, prediction_id) in enumerate(zip(pair, ids, strict=True)):
                        answered[prediction_id] = {
                            "record": row,
                            "prediction": outputs["prediction"][i],
                            "probability": outputs["probability"][i],
                        }
            # What v3 itself says for these rows (a request pinned to the shadow version).
            pinned = client.post(f"/v2/models/{MODEL}/versions/3/infer", oip_request(rows)).json()
            assert pinned["parameters"]["slot"] == "pinned"
            probabilities = {o["name"]: o["data"] for o in pinned["outputs"]}["probability"]
            v3 = dict(zip(map(_key, rows), probabilities, strict=True))

            def shadowed() -> float:
                text = client.get("/metrics").text
                done = metric(text, "keel_predictions_total", version="3", slot="shadow")
                return done if done >= len(rows) else 0.0

            assert eventually(shadowed) == len(rows)
            text = client.get("/metrics").text
            assert metric(text, "keel_shadow_dropped_total") == 0
            assert metric(text, "keel_model_served", version="3", slot="shadow") == 1
            assert metric(text, "keel_requests_total", version="3", slot="shadow") == 0
        # Leaving the server closed its prediction log: everything submitted is durable.
        assert serving.log.buffered == 0
        end = datetime.now(UTC) + timedelta(seconds=1)
        store = project.metadata.predictions
        shadows = store.window(MODEL, start, end, slot="shadow")
        production = store.window(MODEL, start, end, slot="production")

    assert len(answered) == len(rows)
    assert {p.id for p in production} == set(answered)
    assert {p.version for p in production} == {1}
    assert len(shadows) == len(rows)
    assert {s.version for s in shadows} == {3}
    assert {s.shadow_of for s in shadows} == set(answered)
    assert not {s.id for s in shadows} & set(answered)  # shadow rows have ids of their own
    for shadow in shadows:
        assert shadow.shadow_of is not None
        original = answered[shadow.shadow_of]
        assert shadow.inputs == original["record"]
        assert shadow.outputs["probability"] == v3[_key(original["record"])]
    # v3 is a weak stump: its answers are not the ones callers got from v1.
    assert any(
        s.outputs["probability"] != answered[str(s.shadow_of)]["probability"] for s in shadows
    )
    with open_project(folder) as again:
        logged = get(again, next(iter(answered)))
        assert logged is not None and logged.slot == "production"
