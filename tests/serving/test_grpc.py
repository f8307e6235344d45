"""The Open Inference Protocol over gRPC (`keel serve --grpc-port`): NVIDIA's tritonclient.grpc
with its defaults gets the answers `/predict` gives for the same rows, typed tensor contents
work as raw ones do, metadata and readiness match the HTTP endpoints, bad requests are refused
with the HTTP answer's message and problems, and every answer is logged and counted once.
Also `keel serve --grpc-port` as users start it: with workers, and on a port already taken."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from keel.predlog.read import get
from keel.project import Project
from keel.serving.grpc.messages import SERVICE, message
from keel.serving.grpc.service import PROBLEMS_KEY
from tests.serving.support import (
    DATATYPES,
    KEEL,
    MODEL,
    Client,
    free_port,
    metric,
    numpy_column,
    open_project,
    records,
    serve,
    served_copy,
    set_alias,
    wait_ready,
)


@pytest.fixture
def project(trained_template: Path, tmp_path: Path) -> Iterator[Project]:
    with open_project(served_copy(trained_template, tmp_path / "flights")) as project:
        set_alias(project, "production", 2)
        yield project


def _triton_inputs(rows: list[dict[str, Any]]) -> list[triton.InferInput]:
    inputs = []
    for name, datatype in DATATYPES.items():
        tensor = triton.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(numpy_column([r[name] for r in rows], datatype))  # raw contents
        inputs.append(tensor)
    return inputs


def _call(address: str, method: str, request: Any, response: str) -> Any:
    """One call with keel's own messages on a plain channel, as a generated client makes it."""
    with grpc.insecure_channel(address) as channel:
        stub = channel.unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message(response).FromString,
        )
        return stub(request, timeout=30)


def _typed_request(rows: list[dict[str, Any]], **parameters: Any) -> Any:
    """A ModelInferRequest with every tensor's values in its typed `contents`."""
    request = message("ModelInferRequest")(model_name=MODEL)
    for name, datatype in DATATYPES.items():
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[len(rows)])
        values = [r[name] for r in rows]
        if datatype == "BYTES":
            tensor.contents.bytes_contents.extend(str(v).encode() for v in values)
        elif datatype == "INT64":
            tensor.contents.int64_contents.extend(values)
        else:
            tensor.contents.fp64_contents.extend(values)
    for key, value in parameters.items():
        request.parameters[key].bool_param = value
    return request


def test_tritonclient_grpc_gets_the_answers_of_predict_each_logged_once(
    project: Project, trained_template: Path
) -> None:
    rows = records(trained_template, 9)
    with serve(project, grpc=True) as (url, serving), Client(url) as http:
        client = triton.InferenceServerClient(url=serving.listening["grpc"])
        try:
            wanted = [triton.InferRequestedOutput(n) for n in ("prediction", "probability")]
            result = client.infer(MODEL, _triton_inputs(rows), outputs=wanted)
            everything = client.infer(MODEL, _triton_inputs(rows[:1]))  # every output
        finally:
            client.close()
        expected = http.post("/predict", {"records": rows}).json()["predictions"]
        text = http.get("/metrics").text

    probability, prediction = result.as_numpy("probability"), result.as_numpy("prediction")
    assert probability is not None and prediction is not None
    assert probability.tolist() == [p["probability"] for p in expected]
    assert prediction.tolist() == [p["prediction"] for p in expected]
    one = everything.as_numpy("probability")
    assert one is not None and one.tolist() == [expected[0]["probability"]]

    # The prediction ids: the first as the response's id, all of them as a parameter.
    response = result.get_response()
    ids = response.parameters["prediction_ids"].string_param.split(",")
    assert len(set(ids)) == len(rows) and response.id == ids[0]
    assert response.parameters["slot"].string_param == "production"
    assert response.model_version == "2"
    for answer, prediction_id in zip(probability.tolist(), ids, strict=True):
        logged = get(project, prediction_id)
        assert logged is not None and logged.version == 2
        assert logged.outputs["probability"] == pytest.approx(answer)
    labels = {"model": MODEL, "version": "2"}
    assert metric(text, "keel_requests_total", protocol="grpc", **labels) == 2
    assert metric(text, "keel_predictions_total", **labels) == 2 * len(rows) + 1


def test_typed_contents_get_the_answers_raw_contents_get(
    project: Project, trained_template: Path
) -> None:
    rows = records(trained_template, 5, start=20)
    with serve(project, grpc=True) as (url, serving), Client(url) as http:
        address = serving.listening["grpc"]
        raw = _call(address, "ModelInfer", _typed_request(rows), "ModelInferResponse")
        typed = _call(
            address,
            "ModelInfer",
            _typed_request(rows, binary_data_output=False),
            "ModelInferResponse",
        )
        expected = http.post("/predict", {"records": rows}).json()["predictions"]

    names = [o.name for o in typed.outputs]
    assert names == [o.name for o in raw.outputs] and "probability" in names
    position = names.index("probability")
    assert not typed.raw_output_contents
    assert list(typed.outputs[position].contents.fp64_contents) == [
        p["probability"] for p in expected
    ]
    values = np.frombuffer(raw.raw_output_contents[position], dtype="<f8").tolist()
    assert values == [p["probability"] for p in expected]


def test_metadata_and_readiness_match_the_http_endpoints(project: Project) -> None:
    with serve(project, grpc=True) as (url, serving), Client(url) as http:
        client = triton.InferenceServerClient(url=serving.listening["grpc"])
        try:
            assert client.is_server_live() and client.is_server_ready()
            assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, "2")
            server = client.get_server_metadata(as_json=True)
            model = client.get_model_metadata(MODEL, as_json=True)
            with pytest.raises(InferenceServerException) as missing:
                client.is_model_ready("nosuchmodel")
        finally:
            client.close()
        http_server = http.get("/v2").json()
        http_model = http.get(f"/v2/models/{MODEL}").json()

    assert server["name"] == http_server["name"] and server["version"] == http_server["version"]
    assert server["extensions"] == http_server["extensions"]
    assert model["name"] == MODEL and model["versions"] == http_model["versions"]
    assert model["platform"] == http_model["platform"]
    for side in ("inputs", "outputs"):
        assert [(t["name"], t["datatype"]) for t in model[side]] == [
            (t["name"], t["datatype"]) for t in http_model[side]
        ]
    assert missing.value.status() == "StatusCode.NOT_FOUND"
    assert "nosuchmodel" in str(missing.value.message())


def _refusal(address: str, request: Any) -> tuple[grpc.StatusCode, str, list[dict[str, Any]]]:
    with pytest.raises(grpc.RpcError) as caught:
        _call(address, "ModelInfer", request, "ModelInferResponse")
    error: Any = caught.value
    trailing = dict(error.trailing_metadata() or ())
    return error.code(), error.details(), json.loads(trailing.get(PROBLEMS_KEY, b"[]"))


def test_bad_requests_are_refused_naming_the_field_and_the_rule(
    project: Project, trained_template: Path
) -> None:
    rows = records(trained_template, 2)
    with serve(project, grpc=True) as (url, serving), Client(url) as http:
        address = serving.listening["grpc"]
        # A tensor of the wrong datatype: the problem the HTTP endpoint names.
        wrong = _typed_request(rows)
        distance = next(t for t in wrong.inputs if t.name == "distance")
        distance.datatype = "BYTES"
        distance.contents.Clear()
        distance.contents.bytes_contents.extend([b"1", b"2"])
        code, details, problems = _refusal(address, wrong)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert problems[0]["field"] == "distance.datatype" and "INT64" in problems[0]["rule"]
        assert "distance" in details

        # Values in the contents field of another datatype.
        misplaced = _typed_request(rows)
        distance = next(t for t in misplaced.inputs if t.name == "distance")
        distance.contents.Clear()
        distance.contents.fp64_contents.extend([1.0, 2.0])
        code, _, problems = _refusal(address, misplaced)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert problems[0]["field"].endswith("contents.fp64_contents")
        assert "int64_contents" in problems[0]["rule"]

        # Raw contents that do not fit their tensor, and a count that does not match.
        client_inputs = _typed_request(rows)
        raw = message("ModelInferRequest")(model_name=MODEL)
        for tensor in client_inputs.inputs:
            raw.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
            raw.raw_input_contents.append(b"\x01\x02\x03")
        code, _, problems = _refusal(address, raw)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert problems[0]["field"] == "raw_input_contents[0]"
        del raw.raw_input_contents[-1]
        code, _, problems = _refusal(address, raw)
        assert problems[0]["field"] == "raw_input_contents"

        # Text with a NUL, which no store keeps.
        nul = _typed_request(rows)
        carrier = next(t for t in nul.inputs if t.name == "carrier")
        carrier.contents.bytes_contents[0] = b"U\x00A"
        code, _, problems = _refusal(address, nul)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "NUL" in problems[0]["rule"]
        # ... also in the request's id, which the log keeps (PostgreSQL would refuse the row).
        nul_id = _typed_request(rows)
        nul_id.id = "a\x00b"
        code, _, problems = _refusal(address, nul_id)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and problems[0]["field"] == "id"

        # Thousands of unknown inputs: refused with the first problems, within what clients
        # accept as trailing metadata (8 KiB), not dropped by the client.
        crowded = _typed_request(rows)
        for number in range(5000):
            crowded.inputs.add(name=f"extra{number}", datatype="INT64", shape=[2])
        code, details, problems = _refusal(address, crowded)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "and 9999 more" in details
        assert problems[0]["field"].startswith("extra0") and 1 <= len(problems) < 5000

        # A model that is not served, and a version that is not.
        code, details, _ = _refusal(address, message("ModelInferRequest")(model_name="nope"))
        assert code == grpc.StatusCode.NOT_FOUND and "nope" in details
        pinned = _typed_request(rows)
        pinned.model_version = "9"
        code, details, problems = _refusal(address, pinned)
        assert code == grpc.StatusCode.NOT_FOUND and problems[0]["field"] == "version"
        text = http.get("/metrics").text
        # Nothing refused was logged.
        assert sum(s.rows for s in project.metadata.predictions.stats()) == 0
    assert metric(text, "keel_request_errors_total", model=MODEL, status="400") == 7


def test_grpc_and_http_requests_share_the_models_calls(
    trained_template: Path, tmp_path: Path
) -> None:
    rows = records(trained_template, 48)
    folder = served_copy(trained_template, tmp_path / "flights", batching={"max_delay_ms": 20})
    answers: dict[int, float] = {}
    failures: list[BaseException] = []
    with open_project(folder) as project:
        set_alias(project, "production", 2)
        with serve(project, grpc=True) as (url, serving), Client(url) as http:
            address = serving.listening["grpc"]

            def client(number: int) -> None:
                try:
                    grpc_client = triton.InferenceServerClient(url=address)
                    with Client(url) as own:
                        for index in range(number, len(rows), 6):
                            if number % 2:
                                result = grpc_client.infer(MODEL, _triton_inputs([rows[index]]))
                                value = result.as_numpy("probability")
                                assert value is not None
                                answers[index] = float(value[0])
                            else:
                                answer = own.post("/predict", {"records": [rows[index]]})
                                assert answer.status == 200, answer.text
                                answers[index] = answer.json()["predictions"][0]["probability"]
                    grpc_client.close()
                except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                    failures.append(exc)

            threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            expected = http.post("/predict", {"records": rows}).json()["predictions"]
            text = http.get("/metrics").text
    assert not failures, failures[0]
    assert [answers[i] for i in range(len(rows))] == [p["probability"] for p in expected]
    labels = {"model": MODEL, "version": "2"}
    gathered = metric(text, "keel_model_batch_requests_sum", **labels)
    assert metric(text, "keel_model_batch_requests_count", **labels) < gathered


@pytest.mark.slow
def test_keel_serve_grpc_port_with_workers(trained_template: Path, tmp_path: Path) -> None:
    folder = served_copy(trained_template, tmp_path / "flights")
    with open_project(folder) as project:
        set_alias(project, "production", 2)
    rows = records(trained_template, 3)
    port, grpc_port = free_port(), free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    environ["KEEL_USER"] = "ana"
    command = [KEEL, "-C", folder, "serve", "--port", str(port), "--workers", "2", "--json"]
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [*command, "--grpc-port", str(grpc_port)],
            stdout=subprocess.PIPE,
            stderr=log,
            env=environ,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process)
        assert process.stdout is not None
        line = json.loads(process.stdout.readline())
        assert line["grpc"] == f"127.0.0.1:{grpc_port}"
        # Each new channel may reach either worker: every one answers.
        for _ in range(6):
            client = triton.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")
            try:
                assert client.is_server_ready()
                result = client.infer(MODEL, _triton_inputs(rows))
                assert result.as_numpy("probability") is not None
            finally:
                client.close()

        # A second server on the same gRPC port is refused, naming the option.
        again = ["serve", "--port", "0", "--workers", "1", "--grpc-port", str(grpc_port)]
        taken = subprocess.run(
            [KEEL, "-C", folder, *again],
            capture_output=True,
            text=True,
            env=environ,
            timeout=60,
            check=False,
        )
        assert taken.returncode != 0
        assert "--grpc-port" in taken.stderr and str(grpc_port) in taken.stderr
        assert "in use" in taken.stderr
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
        assert process.stdout is not None
        process.stdout.close()
    with open_project(folder) as project:
        assert sum(s.rows for s in project.metadata.predictions.stats()) == 6 * len(rows)


def test_without_the_grpc_extra_keel_serve_names_it(tmp_path: Path) -> None:
    # A `grpc` module that cannot be imported stands for grpcio not being installed.
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "grpc.py").write_text('raise ImportError("grpcio is not installed")\n')
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    environ |= {"KEEL_USER": "ana", "PYTHONPATH": str(shim)}
    subprocess.run([KEEL, "init", tmp_path / "project"], check=True, capture_output=True)
    command = ["-C", tmp_path / "project", "serve", "--workers", "1", "--grpc-port", "1"]
    result = subprocess.run(
        [KEEL, *command], capture_output=True, text=True, env=environ, timeout=60, check=False
    )
    assert result.returncode == 7, result.stderr  # a missing optional dependency
    assert "grpcio" in result.stderr and "keelml[grpc]" in result.stderr
