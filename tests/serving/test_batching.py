"""Adaptive batching (serving.batching): requests that wait while a version's model is busy
share its next call, each gets exactly its own rows back, and one request's bad row fails
that request only. First on the batcher itself with a model that records its calls, then on
a real server with the flights model, concurrent clients and the prediction log."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from keel.predlog.read import get
from keel.serving.batching import Batcher, join_batches, split_outputs
from keel.serving.codec import Batch
from tests.serving.support import (
    MODEL,
    Client,
    metric,
    oip_request,
    open_project,
    records,
    serve,
    served_copy,
    set_alias,
)


class Model:
    """Doubles `x`; refuses a negative one (as feature code refusing a value would); each
    call takes `seconds` and is recorded with its rows."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.calls: list[list[int]] = []
        self.lock = threading.Lock()

    def __call__(self, batch: Batch) -> dict[str, list[Any]]:
        with self.lock:
            self.calls.append(list(batch.columns["x"]))
        time.sleep(self.seconds)
        if any(x < 0 for x in batch.columns["x"]):
            raise ValueError("x must not be negative")
        return {"prediction": [2 * x for x in batch.columns["x"]]}


def one(*xs: int) -> Batch:
    return Batch({"x": list(xs)}, len(xs))


def run(model: Model, batches: list[Batch], **options: Any) -> tuple[list[Any], Model]:
    """Every batch sent at once to one batcher; what each got back (outputs or exception)."""

    async def main() -> list[Any]:
        with ThreadPoolExecutor(max_workers=1) as pool:
            batcher = Batcher(model, pool, **{"max_batch_size": 64, **options})
            tasks = []
            for batch in batches:
                tasks.append(asyncio.ensure_future(batcher.predict(batch)))
                await asyncio.sleep(0)  # each request arrives on its own, as from the network
            return await asyncio.gather(*tasks, return_exceptions=True)

    return asyncio.run(main()), model


def test_requests_waiting_while_the_model_is_busy_share_its_next_call() -> None:
    answers, model = run(Model(), [one(1), one(2), one(3, 4), one(5)])
    # The first call takes the first request (the model was idle: it waits for nothing);
    # the others arrived while it ran and share the next.
    assert model.calls == [[1], [2, 3, 4, 5]]
    assert answers == [
        {"prediction": [2]},
        {"prediction": [4]},
        {"prediction": [6, 8]},
        {"prediction": [10]},
    ]


def test_a_bad_row_fails_only_its_own_request() -> None:
    answers, model = run(Model(), [one(1), one(2), one(-3), one(4)])
    assert answers[0] == {"prediction": [2]}
    assert answers[1] == {"prediction": [4]}
    assert isinstance(answers[2], ValueError) and "negative" in str(answers[2])
    assert answers[3] == {"prediction": [8]}
    # The gathered call failed, then each of its requests was called alone.
    assert model.calls == [[1], [2, -3, 4], [2], [-3], [4]]


def test_a_call_carries_at_most_max_batch_size_rows() -> None:
    answers, model = run(Model(), [one(i) for i in range(10)], max_batch_size=4)
    assert [len(call) for call in model.calls] == [1, 4, 4, 1]
    assert answers == [{"prediction": [2 * i]} for i in range(10)]


def test_a_request_larger_than_the_limit_is_called_alone() -> None:
    answers, model = run(Model(), [one(1), one(*range(6)), one(2)], max_batch_size=4)
    assert model.calls == [[1], [0, 1, 2, 3, 4, 5], [2]]
    assert answers[1] == {"prediction": [0, 2, 4, 6, 8, 10]}


def test_max_delay_holds_an_idle_models_call_for_more_requests() -> None:
    async def main(model: Model) -> list[Any]:
        with ThreadPoolExecutor(max_workers=1) as pool:
            batcher = Batcher(model, pool, max_batch_size=64, max_delay_ms=200)
            first = asyncio.ensure_future(batcher.predict(one(1)))
            await asyncio.sleep(0.02)  # arrives well within the delay
            second = asyncio.ensure_future(batcher.predict(one(2)))
            return await asyncio.gather(first, second)

    model = Model(seconds=0)
    assert asyncio.run(main(model)) == [{"prediction": [2]}, {"prediction": [4]}]
    assert model.calls == [[1, 2]]


def test_a_request_whose_client_went_away_is_not_predicted() -> None:
    async def main(model: Model) -> Any:
        with ThreadPoolExecutor(max_workers=1) as pool:
            batcher = Batcher(model, pool, max_batch_size=64)
            busy = asyncio.ensure_future(batcher.predict(one(1)))
            await asyncio.sleep(0)
            gone = asyncio.ensure_future(batcher.predict(one(2)))
            kept = asyncio.ensure_future(batcher.predict(one(3)))
            await asyncio.sleep(0.01)
            gone.cancel()
            return await asyncio.gather(busy, kept)

    model = Model()
    assert asyncio.run(main(model)) == [{"prediction": [2]}, {"prediction": [6]}]
    assert model.calls == [[1], [3]]


def test_join_and_split_keep_each_requests_rows() -> None:
    batches = [Batch({"a": [1], "b": ["x"]}, 1), Batch({"a": [2, 3], "b": ["y", "z"]}, 2)]
    joined = join_batches(batches)
    assert joined.columns == {"a": [1, 2, 3], "b": ["x", "y", "z"]} and joined.rows == 3
    parts = split_outputs({"p": [10, 20, 30]}, [1, 2])
    assert parts == [{"p": [10]}, {"p": [20, 30]}]


# --- on a real server ------------------------------------------------------------------------

CLIENTS = 8
PER_CLIENT = 25


def _answers(url: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row sent by CLIENTS clients at once, one row per request; the answers by row."""
    answers: list[dict[str, Any] | None] = [None] * len(rows)
    failures: list[BaseException] = []
    start = threading.Barrier(CLIENTS)

    def client(number: int) -> None:
        try:
            with Client(url) as http:
                start.wait(timeout=30)
                for index in range(number, len(rows), CLIENTS):
                    if index % 2:
                        answer = http.post("/predict", {"records": [rows[index]]})
                        assert answer.status == 200, answer.text
                        (prediction,) = answer.json()["predictions"]
                    else:
                        answer = http.post(f"/v2/models/{MODEL}/infer", oip_request([rows[index]]))
                        assert answer.status == 200, answer.text
                        document = answer.json()
                        outputs = {o["name"]: o["data"][0] for o in document["outputs"]}
                        prediction = {"id": document["id"], **outputs}
                    answers[index] = prediction
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures[0]
    assert all(answer is not None for answer in answers)
    return answers  # type: ignore[return-value]


@pytest.mark.slow
def test_concurrent_clients_get_their_own_rows_each_logged_once(
    trained_template: Path, tmp_path: Path
) -> None:
    rows = records(trained_template, CLIENTS * PER_CLIENT)
    # A short delay makes gathering certain even on a fast machine.
    folder = served_copy(trained_template, tmp_path / "flights", batching={"max_delay_ms": 20})
    with open_project(folder) as project:
        set_alias(project, "production", 2)
        with serve(project) as (url, serving), Client(url) as client:
            answers = _answers(url, rows)
            text = client.get("/metrics").text
            # HistGradientBoosting predicts the most probable class: one estimator pass.
            route = serving.state.route(MODEL)
            assert route is not None and route.production is not None
            assert route.production.loaded.one_pass
        labels = {"model": MODEL, "version": "2"}
        calls = metric(text, "keel_model_batch_requests_count", **labels)
        gathered = metric(text, "keel_model_batch_requests_sum", **labels)
        # A request that found no other in flight was predicted at once, on its own; the
        # others went through the batcher, and some of its calls carried several.
        assert len(rows) / 2 < gathered <= len(rows)
        assert calls < gathered
        assert metric(text, "keel_model_batch_rows_sum", **labels) == gathered  # a row each
        assert metric(text, "keel_predictions_total", **labels) == len(rows)

        # Each answer is its own row's: the same as predicting that row alone.
        served = project.load_model(project.metadata.models.get(MODEL, 2))
        alone = served.predict_proba(pd.DataFrame(rows))[:, 1]
        assert [a["probability"] for a in answers] == pytest.approx(list(alone), abs=1e-12)

        # Every answered prediction is in the log exactly once, with its own inputs.
        ids = [a["id"] for a in answers]
        assert len(set(ids)) == len(ids)
        for answer, row in zip(answers, rows, strict=True):
            logged = get(project, answer["id"])
            assert logged is not None and logged.version == 2
            assert logged.outputs["probability"] == pytest.approx(answer["probability"])
            numbers = [k for k, v in row.items() if isinstance(v, int | float)]
            assert numbers and {k: logged.inputs[k] for k in numbers} == {
                k: row[k] for k in numbers
            }
        assert sum(s.rows for s in project.metadata.predictions.stats()) == len(rows)


@pytest.mark.slow
def test_with_batching_off_each_request_is_its_own_call(
    trained_template: Path, tmp_path: Path
) -> None:
    rows = records(trained_template, 40)
    folder = served_copy(trained_template, tmp_path / "flights", batching={"enabled": False})
    with open_project(folder) as project:
        set_alias(project, "production", 2)
        with serve(project) as (url, _), Client(url) as client:
            answers = _answers(url, rows)
            text = client.get("/metrics").text
    assert len(answers) == len(rows)
    assert metric(text, "keel_model_batch_requests_count") == 0
    assert metric(text, "keel_predictions_total", model=MODEL) == len(rows)
