"""Inference contracts: inference from raw samples and request validation."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest

from keel.errors import ConfigError, DataError
from keel.models.signature import (
    InferenceContract,
    InputField,
    OutputField,
    infer_inference_contract,
    validate_request,
)

OUTPUTS = {"prediction": "integer", "probability": "float"}


@pytest.fixture
def contract() -> InferenceContract:
    sample = pd.DataFrame(
        {
            "carrier": ["UA", "AA", "DL"],
            "distance": [1400, 1089, 762],
            "dep_delay": [2.0, None, -3.0],
            "weekend": [True, False, True],
            "time_hour": pd.to_datetime(["2013-01-01T05:00Z"] * 3),
        }
    )
    return infer_inference_contract(sample, OUTPUTS)


def test_inferred_types_nullability_and_outputs(contract: InferenceContract) -> None:
    inputs = {f.name: (f.type, f.nullable) for f in contract.inputs}
    assert inputs == {
        "carrier": ("string", False),
        "distance": ("integer", False),
        "dep_delay": ("float", True),
        "weekend": ("boolean", False),
        "time_hour": ("timestamp", False),
    }
    assert [(o.name, o.type) for o in contract.outputs] == [
        ("prediction", "integer"),
        ("probability", "float"),
    ]


def test_json_round_trip_with_tags(contract: InferenceContract) -> None:
    document = json.loads(json.dumps(contract.to_dict()))
    assert (document["kind"], document["version"]) == ("keel/inference-contract", 1)
    assert InferenceContract.from_dict(document) == contract


def test_arrow_table_sample() -> None:
    table = pa.table({"x": pa.array([1, None], pa.int32()), "s": pa.array(["a", "b"])})
    contract = infer_inference_contract(table, {"prediction": "float"})
    assert [(f.name, f.type, f.nullable) for f in contract.inputs] == [
        ("x", "integer", True),
        ("s", "string", False),
    ]


def test_valid_request_has_no_problems(contract: InferenceContract) -> None:
    record = {
        "carrier": "UA",
        "distance": 1400.0,  # JSON has no integer/float distinction for 1400.0
        "dep_delay": None,
        "weekend": False,
        "time_hour": "2013-01-01T05:00:00Z",
    }
    assert validate_request(contract, [record]) == []
    assert validate_request(contract, record) == []


def test_each_rule_names_its_field(contract: InferenceContract) -> None:
    records = [
        {"carrier": "UA", "distance": 10, "dep_delay": 1, "weekend": True},  # missing time_hour
        {
            "carrier": None,
            "distance": "far",
            "dep_delay": 1.5,
            "weekend": 1,
            "time_hour": "yesterday",
            "colour": "red",
        },
    ]
    found = {(p.record, p.field, p.rule) for p in validate_request(contract, records)}
    assert found == {
        (0, "time_hour", "missing input"),
        (1, "carrier", "null not allowed"),
        (1, "distance", "wrong type"),
        (1, "weekend", "wrong type"),
        (1, "time_hour", "wrong type"),
        (1, "colour", "unknown input"),
    }
    problem = validate_request(contract, records)[0]
    assert "record 0, field 'time_hour': missing input" in str(problem)


def test_bad_inputs() -> None:
    with pytest.raises(DataError, match=r"'empty'.*every value in the sample is null"):
        infer_inference_contract(pd.DataFrame({"empty": [None, None]}), OUTPUTS)
    with pytest.raises(ConfigError, match="'prediction': type must be one of"):
        infer_inference_contract(pd.DataFrame({"x": [1]}), {"prediction": "tensor"})
    assert (
        validate_request(
            infer_inference_contract(pd.DataFrame({"x": [1]}), OUTPUTS),
            ["not a record"],  # type: ignore[list-item]
        )[0].rule
        == "not a record"
    )


def test_the_stored_contract_document_is_what_it_was() -> None:
    # Every registered version stores this document: its bytes must not change.
    contract = InferenceContract(
        (
            InputField("dep_delay", "float", True, -43.0, 1301),
            InputField("carrier", "string", False, None, None, ("AA", "UA")),
            InputField("month", "integer", False, 1, 12, (1, 2, 3)),
            InputField("time_hour", "timestamp", False),
        ),
        (OutputField("prediction", "integer"), OutputField("probability", "float")),
    )
    assert json.dumps(contract.to_dict()) == (
        '{"kind": "keel/inference-contract", "version": 1, "inputs": ['
        '{"name": "dep_delay", "type": "float", "nullable": true, "minimum": -43.0, '
        '"maximum": 1301}, '
        '{"name": "carrier", "type": "string", "nullable": false, "allowed": ["AA", "UA"]}, '
        '{"name": "month", "type": "integer", "nullable": false, "minimum": 1, "maximum": 12, '
        '"allowed": [1, 2, 3]}, '
        '{"name": "time_hour", "type": "timestamp", "nullable": false}], '
        '"outputs": [{"name": "prediction", "type": "integer"}, '
        '{"name": "probability", "type": "float"}]}'
    )
    restored = InferenceContract.from_dict(json.loads(json.dumps(contract.to_dict())))
    assert restored == contract
    assert restored.inputs[2].allowed_set == {1, 2, 3}


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"name": "x", "type": "integer"}, "inputs[0].nullable: Field required"),
        (
            {"name": "x", "type": "integer", "nullable": False, "minimum": "low"},
            "inputs[0].minimum: Input should be an integer or a number",
        ),
        (
            {"name": "x", "type": "integer", "nullable": "no"},
            "inputs[0].nullable: Input should be a valid boolean",
        ),
    ],
)
def test_a_malformed_stored_contract_names_the_field_and_the_rule(
    field: dict[str, object], message: str
) -> None:
    document = {
        "kind": "keel/inference-contract",
        "version": 1,
        "inputs": [field],
        "outputs": [{"name": "prediction", "type": "float"}],
    }
    with pytest.raises(ConfigError) as raised:
        InferenceContract.from_dict(document)
    assert f"inference contract.{message}" in str(raised.value)
