"""The inference contract carries the data contract's ranges and domains, recorded when a
version is registered, and a real server on loopback holds requests to them as
`serving.input_contract` says: `enforce` refuses (422 naming the input, the row and the
rule), `warn` answers, logs and counts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from keel.models.signature import InferenceContract
from keel.serving.codec import Batch, bound_problems
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

COUNTER = "keel_input_contract_violations_total"


def _registered(folder: Path) -> dict[str, Any]:
    with open_project(folder) as project:
        document: dict[str, Any] = project.metadata.models.get(MODEL, 1).inference_contract
    return document


def test_registration_records_the_data_contracts_ranges_and_domains(
    trained_template: Path,
) -> None:
    inputs = {f["name"]: f for f in _registered(trained_template)["inputs"]}
    # contracts/raw.yaml of the trained project: month's domain, distance's range.
    assert inputs["month"]["allowed"] == list(range(1, 13))
    assert (inputs["distance"]["minimum"], inputs["distance"]["maximum"]) == (0, 5474)
    assert inputs["origin"]["allowed"] == ["EWR", "JFK", "LGA"]
    assert "minimum" not in inputs["tailnum"] and "allowed" not in inputs["tailnum"]
    assert "allowed" not in inputs["time_hour"]


def test_a_version_registered_without_bounds_checks_none(trained_template: Path) -> None:
    document = _registered(trained_template)
    older = {
        **document,
        "inputs": [
            {k: v for k, v in f.items() if k in ("name", "type", "nullable")}
            for f in document["inputs"]
        ],
    }
    contract = InferenceContract.from_dict(older)
    row = {**records(trained_template, 1)[0], "month": 13, "distance": 10**6}
    batch = Batch({name: [value] for name, value in row.items()}, 1)
    assert bound_problems(contract, batch) == []
    bounded = InferenceContract.from_dict(document)
    assert [p.field for p in bound_problems(bounded, batch)] == ["month", "distance"]
    assert InferenceContract.from_dict(bounded.to_dict()) == bounded


@pytest.mark.parametrize("protocol", ["records", "oip"])
def test_enforced_a_value_outside_the_contract_is_a_422_naming_input_row_and_rule(
    trained_template: Path, tmp_path: Path, protocol: str
) -> None:
    folder = served_copy(trained_template, tmp_path / "flights", input_contract="enforce")
    rows = records(trained_template, 3)
    rows[2] = {**rows[2], "distance": 99_999}
    rows[1] = {**rows[1], "carrier": "ZZ"}
    with open_project(folder) as project:
        set_alias(project, "production", 1)
        with serve(project) as (url, _), Client(url) as client:
            if protocol == "oip":
                answer = client.post(f"/v2/models/{MODEL}/infer", oip_request(rows))
            else:
                answer = client.post("/predict", {"records": rows})
            assert answer.status == 422, answer.text
            document = answer.json()
            assert (document["model"], document["version"]) == (MODEL, 1)
            carrier, distance = document["problems"]
            assert (carrier["field"], carrier["record"]) == ("carrier", 1)
            assert carrier["rule"].startswith("one of the values seen in training: '9E', 'AA'")
            assert carrier["detail"] == "got 'ZZ'"
            assert distance == {
                "field": "distance",
                "record": 2,
                "rule": "at most 5474 (the data contract's range)",
                "detail": "got 99999",
            }
            assert "serving.input_contract: enforce" in document["error"]
            # Refused: nothing was predicted or logged, and the rows inside are answered.
            assert client.post("/predict", {"records": rows[:1]}).status == 200
            text = client.get("/metrics").text
    assert metric(text, COUNTER, input="distance", mode="enforce") == 1
    assert metric(text, "keel_predictions_total") == 1


def test_warned_a_value_outside_the_contract_is_answered_logged_and_counted(
    trained_template: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = served_copy(trained_template, tmp_path / "flights", input_contract="warn")
    row = {**records(trained_template, 1)[0], "distance": 99_999, "temp": 150.5}
    with open_project(folder) as project:
        set_alias(project, "production", 1)
        with (
            serve(project) as (url, _),
            Client(url) as client,
            caplog.at_level(logging.WARNING, logger="keel.serving"),
        ):
            answer = client.post("/predict", {"records": [row]})
            assert answer.status == 200, answer.text
            assert answer.json()["predictions"][0]["id"]
            document = client.get("/openapi.json").json()
            text = client.get("/metrics").text
    assert metric(text, COUNTER, input="distance", mode="warn") == 1
    assert metric(text, COUNTER, input="temp", mode="warn") == 1
    warned = [
        r.getMessage() for r in caplog.records if "outside its input contract" in r.getMessage()
    ]
    assert len(warned) == 1 and "distance (record 0): at most 5474" in warned[0]
    # Warned bounds are described, not enforced by the schema a client is generated from.
    distance = document["components"]["schemas"]["FlightsDelayRecord"]["properties"]["distance"]
    assert distance["maximum"] == 2**63 - 1  # only the 64-bit limit the server enforces
    assert distance["description"].startswith("trained on minimum 0, maximum 5474: other values")
