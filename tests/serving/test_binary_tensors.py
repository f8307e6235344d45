"""The Open Inference Protocol's binary tensor extension: tritonclient with its defaults (binary
inputs, binary outputs) gets the answers `/predict` gives, and binary data that does not fit
its tensors is refused naming the input."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton

from keel.project import Project
from tests.serving.support import (
    DATATYPES,
    MODEL,
    Client,
    numpy_column,
    open_project,
    records,
    serve,
    served_copy,
    set_alias,
)


@pytest.fixture
def project(trained_template: Path, tmp_path: Path) -> Iterator[Project]:
    with open_project(served_copy(trained_template, tmp_path / "flights")) as project:
        set_alias(project, "production", 2)
        yield project


def test_tritonclient_with_its_defaults_gets_the_answers_of_predict(
    project: Project, trained_template: Path
) -> None:
    rows = records(trained_template, 9)
    with serve(project) as (url, _), Client(url) as http:
        client = triton.InferenceServerClient(url=url.removeprefix("http://"))
        try:
            inputs = []
            for name, datatype in DATATYPES.items():
                tensor = triton.InferInput(name, [len(rows)], datatype)
                tensor.set_data_from_numpy(numpy_column([r[name] for r in rows], datatype))
                inputs.append(tensor)
            wanted = [triton.InferRequestedOutput(n) for n in ("prediction", "probability")]
            result = client.infer(MODEL, inputs, outputs=wanted)
            everything = client.infer(MODEL, inputs)  # no outputs named: JSON outputs
        finally:
            client.close()
        expected = http.post("/predict", {"records": rows}).json()["predictions"]

    response = result.get_response()
    assert all("binary_data_size" in o["parameters"] for o in response["outputs"])
    probability, prediction = result.as_numpy("probability"), result.as_numpy("prediction")
    assert probability is not None and prediction is not None
    assert probability.tolist() == [p["probability"] for p in expected]
    assert prediction.tolist() == [p["prediction"] for p in expected]
    plain = everything.as_numpy("probability")
    assert plain is not None and plain.tolist() == probability.tolist()


def test_binary_data_that_does_not_fit_is_refused_naming_the_input(project: Project) -> None:
    header = {
        "inputs": [
            {
                "name": "distance",
                "shape": [2],
                "datatype": "INT64",
                "parameters": {"binary_data_size": 12},
            }
        ]
    }
    head = json.dumps(header).encode()
    body = head + np.array([1, 2], dtype="<i8").tobytes()[:12]
    with serve(project) as (url, _), Client(url) as http:
        answer = http.request(
            "POST",
            f"/v2/models/{MODEL}/infer",
            body,
            {"Inference-Header-Content-Length": str(len(head))},
        )
        too_long = http.request(
            "POST",
            f"/v2/models/{MODEL}/infer",
            head,
            {"Inference-Header-Content-Length": str(len(head) + 5)},
        )
    assert answer.status == 400, answer.text
    [problem] = answer.json()["problems"]
    assert problem["field"] == "inputs[0].parameters.binary_data_size"
    assert "multiple of 8" in problem["rule"]
    assert too_long.status == 400 and "Inference-Header-Content-Length" in too_long.text


def test_a_nul_in_a_binary_text_element_is_refused_naming_the_input(project: Project) -> None:
    # No store keeps a NUL in text: refused at the edge, as in JSON requests.
    element = b"U\x00A"
    blob = struct.pack("<I", len(element)) + element
    header = {
        "inputs": [
            {
                "name": "carrier",
                "shape": [1],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(blob)},
            }
        ]
    }
    head = json.dumps(header).encode()
    with serve(project) as (url, _), Client(url) as http:
        answer = http.request(
            "POST",
            f"/v2/models/{MODEL}/infer",
            head + blob,
            {"Inference-Header-Content-Length": str(len(head))},
        )
    assert answer.status == 400, answer.text
    [problem] = answer.json()["problems"]
    assert problem["field"].endswith(".data") and "NUL" in problem["rule"]


def test_a_body_that_is_not_json_says_what_it_looks_like(project: Project) -> None:
    # Binary tensors sent without the header that says where the JSON part ends.
    values = struct.pack("<2d", 1.5, 2.5)
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "dep_delay",
                    "shape": [2],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": len(values)},
                }
            ]
        }
    ).encode()
    form = b"records=%5B%7B%22dep_delay%22%3A1%7D%5D"
    with serve(project) as (url, _), Client(url) as http:
        binary = http.request("POST", f"/v2/models/{MODEL}/infer", head + values)
        posted = http.request(
            "POST", "/predict", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        plain = http.request("POST", "/predict", b"records=1", {"Content-Type": "text/plain"})

    assert binary.status == 400, binary.text
    assert binary.json()["error"].startswith(
        f"the body is {len(head)} bytes of JSON followed by 16 bytes of binary data, "
        "without the Inference-Header-Content-Length header"
    )
    assert binary.json()["problems"][0]["field"] == "Inference-Header-Content-Length"

    assert posted.status == 400, posted.text
    assert "Content-Type: application/x-www-form-urlencoded" in posted.json()["error"]
    assert "send Content-Type: application/json" in posted.json()["error"]
    assert posted.json()["problems"][0] == {
        "field": "Content-Type",
        "rule": "application/json",
        "detail": "application/x-www-form-urlencoded",
    }
    # A JSON content type (or none of note) keeps the plain JSON error.
    assert plain.status == 400 and plain.json()["error"].startswith("malformed JSON")
