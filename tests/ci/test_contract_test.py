"""`keel contract-test`: a version answers real rows in its inference contract and refuses bad
requests naming the field, loaded here or served by a real `keel serve` on loopback."""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from keel.ci.contract_test import Answer, check_answers
from keel.models.signature import InferenceContract, InputField, OutputField
from tests.fixtures.cli import Keel
from tests.serving.support import MODEL, open_project, serve_process, set_alias


def _junit(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def test_the_local_model_passes_every_check(keel: Keel, release_project: Path) -> None:
    junit = release_project / "reports" / "inference.xml"

    result = keel(
        "-C", release_project, "contract-test", f"{MODEL}@1", "--rows", "40",
        "--junit", junit, "--json",
    )  # fmt: skip

    assert result.code == 0, result.out + result.err
    document = result.json()
    assert document["ok"] is True and document["target"] == "local"
    assert document["model"] == f"{MODEL}@1" and document["rows"] == 40
    names = [check["name"] for check in document["checks"]]
    assert "release gate inference_contract passes" in names
    assert "40 real rows are answered, one answer per row" in names
    assert any(name.startswith("refuses a request without input 'year'") for name in names)
    assert any(name.startswith("refuses a string in integer input") for name in names)
    assert {check["status"] for check in document["checks"]} == {"passed"}
    root = _junit(junit)
    assert root.get("tests") == str(len(names)) and root.get("failures") == "0"


def _tamper(folder: Path, version: int, change: dict[str, Any]) -> None:
    """Rewrite a version's stored inference contract, as a bad registration would leave it."""
    with sqlite3.connect(folder / ".keel" / "keel.db") as db:
        (text,) = db.execute(
            "SELECT inference_contract FROM model_versions WHERE model = ? AND version = ?",
            (MODEL, version),
        ).fetchone()
        db.execute(
            "UPDATE model_versions SET inference_contract = ? WHERE model = ? AND version = ?",
            (json.dumps({**json.loads(text), **change}), MODEL, version),
        )


def test_a_contract_the_model_violates_fails_with_a_junit_failure(
    keel: Keel, release_project: Path
) -> None:
    # The contract promises a string label; the model answers 0 and 1.
    _tamper(
        release_project,
        1,
        {
            "outputs": [
                {"name": "prediction", "type": "string"},
                {"name": "probability", "type": "float"},
            ]
        },
    )
    junit = release_project / "inference.xml"

    result = keel(
        "-C", release_project, "contract-test", f"{MODEL}@1", "--rows", "20", "--junit", junit
    )

    assert result.code == 1, result.out + result.err
    assert "FAIL  outputs have the contract's names and types: output 'prediction'" in result.out
    assert "expected string, got int" in result.out
    assert "inference contract test FAILED: 1 of" in result.out
    failures = [case for case in _junit(junit).iter("testcase") if case.find("failure") is not None]
    assert [case.get("name") for case in failures] == [
        "outputs have the contract's names and types"
    ]


def test_an_unknown_version_is_not_found(keel: Keel, release_project: Path) -> None:
    result = keel("-C", release_project, "contract-test", f"{MODEL}@9", "--json")
    assert result.code == 3
    assert result.json()["error"]["code"] == "not_found"


@pytest.mark.slow
def test_a_served_version_passes_and_an_unserved_one_is_named(
    keel: Keel, release_project: Path, tmp_path: Path
) -> None:
    with open_project(release_project) as project:
        set_alias(project, "production", 2)
    with serve_process(release_project, tmp_path / "serve.err") as (url, _):
        junit = tmp_path / "served.xml"
        served = keel(
            "-C", release_project, "contract-test", f"{MODEL}@2", "--url", url, "--rows", "30",
            "--junit", junit, "--json",
        )  # fmt: skip
        unserved = keel("-C", release_project, "contract-test", f"{MODEL}@1", "--url", url)

    assert served.code == 0, served.out + served.err
    document = served.json()
    assert document["target"] == url and document["rows"] == 30
    assert {check["status"] for check in document["checks"]} == {"passed"}
    names = [check["name"] for check in document["checks"]]
    assert "30 real rows are answered, one answer per row" in names
    assert any(name.startswith("refuses a request without input") for name in names)
    assert _junit(junit).get("failures") == "0"

    assert unserved.code == 3
    assert f"does not serve {MODEL}@1" in unserved.err


def test_an_unreachable_server_is_a_store_error(keel: Keel, release_project: Path) -> None:
    from tests.serving.support import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = keel("-C", release_project, "contract-test", f"{MODEL}@1", "--url", url)
    assert result.code == 6
    assert "cannot reach the model server" in result.err


CONTRACT = InferenceContract(
    inputs=(InputField("distance", "float", False), InputField("carrier", "string", False)),
    outputs=(OutputField("prediction", "integer"), OutputField("probability", "float")),
)
RECORDS = [{"distance": 100.0, "carrier": "UA"}, {"distance": 250.0, "carrier": "B6"}]


def _failed(cases: list[Any]) -> dict[str, str]:
    return {case.name: case.failure for case in cases if case.failure is not None}


def test_a_server_that_answers_bad_requests_fails_the_refusal_checks() -> None:
    # No real server misbehaves on purpose: a stand-in that answers everything.
    def send(records: list[dict[str, Any]]) -> Answer:
        return Answer(200, {"prediction": [1] * len(records), "probability": [0.9] * len(records)})

    failed = _failed(check_answers(CONTRACT, send, RECORDS))

    assert set(failed) == {
        "refuses a request without input 'distance', naming it",
        "refuses a string in float input 'distance', naming it",
    }
    assert all("answered (status 200) instead of refused" in f for f in failed.values())


def test_refusals_must_name_the_field_and_answers_must_be_in_range() -> None:
    def send(records: list[dict[str, Any]]) -> Answer:
        if any(
            set(r) != {"distance", "carrier"} or isinstance(r["distance"], str) for r in records
        ):
            return Answer(400, None, "bad request", ("body",))
        return Answer(200, {"prediction": [1, 0], "probability": [0.2, 1.5]})

    failed = _failed(check_answers(CONTRACT, send, RECORDS))

    assert (
        failed["output values are in range"] == "output 'probability', row 1: 1.5 is outside [0, 1]"
    )
    assert (
        "without naming the field 'distance'"
        in failed["refuses a request without input 'distance', naming it"]
    )
    assert "2 real rows are answered, one answer per row" not in failed
