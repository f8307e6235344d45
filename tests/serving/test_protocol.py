"""`keel serve` speaks the Open Inference Protocol well enough for an off-the-shelf client
(NVIDIA's tritonclient), and documents itself: a valid OpenAPI 3.1 document with each served
model's record schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import tritonclient.http as triton
from openapi_spec_validator import validate

from keel.predlog.ids import is_prediction_id
from keel.project import Project
from tests.serving.support import (
    DATATYPES,
    MODEL,
    Client,
    open_project,
    records,
    serve,
    served_copy,
    set_alias,
)


@pytest.fixture
def project(trained_template: Path, tmp_path: Path) -> Iterator[Project]:
    # enforce: /openapi.json then carries the contract's bounds as the schema's own.
    folder = served_copy(trained_template, tmp_path / "flights", input_contract="enforce")
    with open_project(folder) as project:
        set_alias(project, "production", 2)
        yield project


def _column(values: list[Any], datatype: str) -> np.ndarray[Any, Any]:
    if datatype == "BYTES":
        return np.array(values, dtype=object)  # strings and ISO 8601 times
    return np.array(values, dtype=np.int64 if datatype == "INT64" else np.float64)


def test_tritonclient_infers_and_the_answers_match_predict(
    project: Project, trained_template: Path
) -> None:
    rows = records(trained_template, 7)
    with serve(project) as (url, _), Client(url) as http:
        client = triton.InferenceServerClient(url=url.removeprefix("http://"))
        try:
            assert client.is_server_live()
            assert client.is_server_ready()
            assert client.is_model_ready(MODEL)
            assert client.is_model_ready(MODEL, "2")
            metadata = client.get_model_metadata(MODEL)
            assert metadata["name"] == MODEL and metadata["versions"] == ["2"]
            assert {i["name"]: i["datatype"] for i in metadata["inputs"]} == DATATYPES
            assert [(o["name"], o["datatype"]) for o in metadata["outputs"]] == [
                ("prediction", "INT64"),
                ("probability", "FP64"),
            ]

            inputs = []
            for spec in metadata["inputs"]:
                tensor = triton.InferInput(spec["name"], [len(rows)], spec["datatype"])
                values = [row[spec["name"]] for row in rows]
                tensor.set_data_from_numpy(_column(values, spec["datatype"]), binary_data=False)
                inputs.append(tensor)
            wanted = [
                triton.InferRequestedOutput(name, binary_data=False)
                for name in ("prediction", "probability")
            ]
            result = client.infer(MODEL, inputs, outputs=wanted, request_id="client-7")
            only = client.infer(
                MODEL, inputs, outputs=[triton.InferRequestedOutput("probability", False)]
            )
        finally:
            client.close()

        answer = http.post("/predict", {"records": rows})
        assert answer.status == 200, answer.text

    response = result.get_response()
    assert response["model_name"] == MODEL and response["model_version"] == "2"
    assert response["parameters"]["slot"] == "production"
    assert response["parameters"]["client_id"] == "client-7"
    # The response id is the first row's prediction id; every row has its own.
    ids = response["parameters"]["prediction_ids"]
    assert response["id"] == ids[0]
    assert len(set(ids)) == len(rows) and all(is_prediction_id(i) for i in ids)

    expected = answer.json()
    assert expected["version"] == 2 and expected["slot"] == "production"
    predictions = expected["predictions"]
    probability = result.as_numpy("probability")
    prediction = result.as_numpy("prediction")
    assert probability is not None and prediction is not None
    assert probability.dtype == np.float64 and prediction.dtype == np.int64
    assert probability.tolist() == [p["probability"] for p in predictions]
    assert prediction.tolist() == [p["prediction"] for p in predictions]
    assert probability.min() < probability.max()  # seven different flights
    assert not set(ids) & {p["id"] for p in predictions}  # a new id per prediction

    # Only the requested output comes back.
    assert [o["name"] for o in only.get_response()["outputs"]] == ["probability"]
    alone = only.as_numpy("probability")
    assert alone is not None and alone.tolist() == probability.tolist()


def test_openapi_is_a_valid_3_1_document_with_the_record_schema(
    project: Project, trained_template: Path
) -> None:
    rows = records(trained_template, 2)
    with serve(project) as (url, _), Client(url) as http:
        answer = http.get("/openapi.json")
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("application/json")
        document = answer.json()

        validate(document)  # raises if it is not a valid OpenAPI document
        assert document["openapi"].startswith("3.1.")
        assert "/v2/models/{name}/infer" in document["paths"]
        predict = document["paths"][f"/models/{MODEL}/predict"]["post"]
        assert "v2 in production" in predict["summary"]
        schemas = document["components"]["schemas"]
        record = schemas["FlightsDelayRecord"]
        items = predict["requestBody"]["content"]["application/json"]["schema"]
        assert items["properties"]["records"]["items"] == {
            "$ref": "#/components/schemas/FlightsDelayRecord"
        }
        assert set(record["properties"]) == set(DATATYPES)
        assert set(record["required"]) == set(DATATYPES)
        # The data contract's range, recorded at registration (serving.input_contract enforces).
        assert record["properties"]["distance"] == {
            "type": "integer",
            "minimum": 0,
            "maximum": 5474,
        }
        assert record["properties"]["month"]["enum"] == list(range(1, 13))
        assert record["properties"]["time_hour"] == {"type": "string", "format": "date-time"}
        assert record["properties"]["temp"] == {
            "anyOf": [{"type": "number", "minimum": 2.02, "maximum": 108.95}, {"type": "null"}]
        }  # nullable: it had nulls in training
        assert set(schemas["FlightsDelayPrediction"]["properties"]) == {
            "id",
            "prediction",
            "probability",
        }

        # The schema says what the server accepts: a real record passes, a wrong one fails,
        # and the server agrees on both.
        validator = jsonschema.Draft202012Validator(record)
        validator.validate(rows[0])
        wrong = {**rows[0], "distance": "far"}
        assert not validator.is_valid(wrong)
        assert http.post("/predict", {"records": [rows[0]]}).status == 200
        assert http.post("/predict", {"records": [wrong]}).status == 400
