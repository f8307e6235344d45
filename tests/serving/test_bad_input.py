"""The bad-input catalogue against a real server: each request is refused with a 4xx whose
error names the field (or the model, version or method) and the rule, never a 5xx or a
traceback, and the server keeps answering good requests after each one."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.serving.support import (
    DATATYPES,
    MODEL,
    Client,
    oip_request,
    open_project,
    records,
    serve,
    served_copy,
    set_alias,
)

MAX_BYTES = 32 * 1024
MAX_ROWS = 5
INFER = f"/v2/models/{MODEL}/infer"
PREDICT = "/predict"

Row = dict[str, Any]


@dataclass(frozen=True)
class Server:
    url: str
    row: Row

    def good(self, client: Client) -> None:
        answer = client.post(PREDICT, {"records": [self.row]})
        assert answer.status == 200, answer.text
        assert answer.json()["predictions"][0]["id"]


@pytest.fixture(scope="module")
def server(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = served_copy(
        trained_template,
        tmp_path_factory.mktemp("bad-input") / "flights",
        max_request_bytes=MAX_BYTES,
        max_rows=MAX_ROWS,
    )
    with open_project(folder) as project:
        set_alias(project, "production", 1)
        with serve(project) as (url, _):
            yield Server(url, records(trained_template, 1)[0])


def _records(row: Row, **changes: Any) -> bytes:
    return json.dumps({"records": [{**row, **changes}]}).encode()


def _literal(row: Row, name: str, text: bytes) -> bytes:
    """A records request whose `name` is the JSON text `text` (which json.dumps won't write)."""
    return _records(row, **{name: "@@"}).replace(b'"@@"', text)


def _without(row: Row, name: str) -> bytes:
    return json.dumps({"records": [{k: v for k, v in row.items() if k != name}]}).encode()


def _tensors(row: Row, change: Callable[[list[dict[str, Any]]], None]) -> bytes:
    document = oip_request([row])
    change(document["inputs"])
    return json.dumps(document).encode()


def _set(name: str, **fields: Any) -> Callable[[list[dict[str, Any]]], None]:
    def change(inputs: list[dict[str, Any]]) -> None:
        for tensor in inputs:
            if tensor["name"] == name:
                tensor.update(fields)

    return change


def _duplicate(name: str) -> Callable[[list[dict[str, Any]]], None]:
    def change(inputs: list[dict[str, Any]]) -> None:
        inputs.append(next(dict(t) for t in inputs if t["name"] == name))

    return change


def _padded(row: Row, size: int) -> bytes:
    """A valid request (an OIP `id` padded) of at least `size` bytes."""
    return json.dumps(oip_request([row], id="x" * size)).encode()


@dataclass(frozen=True)
class Bad:
    """One bad request and how it must be refused."""

    body: Callable[[Row], bytes]
    status: int
    field: str | None  # what the first problem names; None: no problem list, see `mention`
    rule: str = ""  # a part of the first problem's rule
    path: str = PREDICT
    method: str = "POST"
    chunked: bool = False
    mention: str = ""  # a part of the error message
    headers: dict[str, str] | None = None
    as_json: bool = True  # the answer is the app's JSON error document


CATALOGUE: dict[str, Bad] = {
    "malformed JSON": Bad(lambda row: b'{"records": [{"year": 2013,', 400, "body", "valid JSON"),
    "empty body": Bad(lambda row: b"", 400, "body", mention="empty"),
    "blank body": Bad(lambda row: b" \r\n ", 400, "body", mention="empty"),
    "non-object body (OIP)": Bad(lambda row: b'"hello"', 400, "body", "object", path=INFER),
    "non-object body (records)": Bad(lambda row: b"42", 400, "body", "object"),
    "list of non-records": Bad(lambda row: b"[1, 2]", 400, "records", "an object per record"),
    # NaN and Infinity are not JSON, but Python's json writes them: name the literal, the field
    # and what to send instead.
    "NaN literal": Bad(
        lambda row: _literal(row, "temp", b"NaN"),
        400,
        "temp",
        "NaN and Infinity are not JSON",
        mention="temp: NaN is not valid JSON (line 1, column",
    ),
    "-Infinity literal": Bad(
        lambda row: _literal(row, "dewp", b"-Infinity"),
        400,
        "dewp",
        "NaN and Infinity are not JSON",
        mention="send null for a missing value",
    ),
    "NaN literal (OIP)": Bad(
        lambda row: _tensors(row, _set("temp", data=["@@"])).replace(b'"@@"', b"NaN"),
        400,
        "temp",
        "NaN and Infinity are not JSON",
        path=INFER,
        mention="temp: NaN is not valid JSON",
    ),
    "Infinity literal (OIP)": Bad(
        lambda row: (
            json.dumps(oip_request([row])).encode().replace(b'"data": [', b'"data": [Infinity, ', 1)
        ),
        400,
        next(iter(DATATYPES)),
        "NaN and Infinity are not JSON",
        path=INFER,
        mention="send null for a missing value",
    ),
    "wrong type (records)": Bad(
        lambda row: _records(row, distance="far"), 400, "distance", "wrong type"
    ),
    "wrong type (OIP)": Bad(
        lambda row: _tensors(row, _set("origin", data=[7])),
        400,
        "origin",
        "wrong type",
        path=INFER,
    ),
    "boolean is not a number": Bad(lambda row: _records(row, temp=True), 400, "temp", "type"),
    "bad timestamp": Bad(
        lambda row: _records(row, time_hour="yesterday"), 400, "time_hour", "wrong type"
    ),
    "missing input (records)": Bad(
        lambda row: _without(row, "carrier"), 400, "carrier", "missing input"
    ),
    "missing input (OIP)": Bad(
        lambda row: _tensors(row, lambda inputs: inputs.pop()),
        400,
        "visib",
        "missing input",
        path=INFER,
    ),
    "unknown input (records)": Bad(
        lambda row: _records(row, colour="red"), 400, "colour", "unknown input"
    ),
    "unknown input (OIP)": Bad(
        lambda row: _tensors(
            row, lambda i: i.append({"name": "x", "shape": [1], "datatype": "FP64", "data": [1]})
        ),
        400,
        "x",
        "unknown input",
        path=INFER,
    ),
    "unknown request field (OIP)": Bad(
        lambda row: json.dumps({**oip_request([row]), "input": []}).encode(),
        400,
        "input",
        "unknown field",
        path=INFER,
    ),
    "no input tensors": Bad(lambda row: b'{"inputs": []}', 400, "inputs", path=INFER),
    "null where not nullable (records)": Bad(
        lambda row: _records(row, carrier=None), 400, "carrier", "null not allowed"
    ),
    "null where not nullable (OIP)": Bad(
        lambda row: _tensors(row, _set("distance", data=[None])),
        400,
        "distance",
        "null not allowed",
        path=INFER,
    ),
    "shape/data mismatch": Bad(
        lambda row: _tensors(row, _set("year", shape=[3])),
        400,
        "year.shape",
        "shape matches data",
        path=INFER,
    ),
    "bad shape": Bad(
        lambda row: _tensors(row, _set("year", shape=[1, 2])), 400, "year.shape", path=INFER
    ),
    "tensors of different lengths": Bad(
        lambda row: _tensors(row, _set("year", shape=[2], data=[2013, 2013])),
        400,
        "inputs",
        "one length",
        path=INFER,
    ),
    "wrong OIP datatype": Bad(
        lambda row: _tensors(row, _set("carrier", datatype="INT64")),
        400,
        "carrier.datatype",
        "BYTES",
        path=INFER,
    ),
    "duplicate tensor": Bad(
        lambda row: _tensors(row, _duplicate("dest")),
        400,
        "dest",
        "one tensor per input",
        path=INFER,
    ),
    "unknown output": Bad(
        lambda row: json.dumps(oip_request([row], outputs=[{"name": "score"}])).encode(),
        400,
        "outputs",
        path=INFER,
    ),
    "nested 20 deep": Bad(lambda row: b"[" * 20 + b"]" * 20, 400, "body", "levels deep"),
    "nested 10,000 deep": Bad(lambda row: b"[" * 10_000 + b"]" * 10_000, 400, "body"),
    "nested 900 deep in a tensor": Bad(
        lambda row: _tensors(row, _set("year", data=json.loads("[" * 900 + "]" * 900))),
        400,
        "body",
        "levels deep",
        path=INFER,
    ),
    "oversized body (Content-Length)": Bad(
        lambda row: _padded(row, MAX_BYTES), 413, "body", "at most", path=INFER
    ),
    "oversized body (chunked)": Bad(
        lambda row: _padded(row, MAX_BYTES), 413, "body", "at most", path=INFER, chunked=True
    ),
    "too many rows (records)": Bad(
        lambda row: json.dumps({"records": [row] * (MAX_ROWS + 1)}).encode(),
        413,
        "inputs",
        f"at most {MAX_ROWS} rows",
    ),
    "too many rows (OIP)": Bad(
        lambda row: json.dumps(oip_request([row] * (MAX_ROWS + 1))).encode(),
        413,
        "inputs",
        f"at most {MAX_ROWS} rows",
        path=INFER,
    ),
    "unknown model (OIP)": Bad(
        lambda row: json.dumps(oip_request([row])).encode(),
        404,
        None,
        path="/v2/models/no-such-model/infer",
        mention="'no-such-model' is not served",
    ),
    "unknown model (records)": Bad(
        _records, 404, None, path="/models/no-such-model/predict", mention="no-such-model"
    ),
    "unknown version": Bad(
        lambda row: json.dumps(oip_request([row])).encode(),
        404,
        None,
        path=f"/v2/models/{MODEL}/versions/9/infer",
        mention="version 9 is not served",
    ),
    "version that is not a number": Bad(
        lambda row: json.dumps(oip_request([row])).encode(),
        404,
        None,
        path=f"/v2/models/{MODEL}/versions/latest/infer",
        mention="version latest",
    ),
    "wrong method (GET infer)": Bad(lambda row: b"", 405, None, path=INFER, method="GET"),
    "wrong method (PUT predict)": Bad(_records, 405, None, method="PUT"),
    "huge integer": Bad(
        lambda row: _literal(row, "distance", b"18446744073709551615"),
        400,
        "distance",
        "wrong type",
        mention="64-bit",
    ),
    "integer beyond 64 bits": Bad(
        lambda row: _literal(row, "distance", b"1" + b"0" * 30),
        400,
        "distance",
        "wrong type",
        mention="64-bit",
    ),
    "huge integer (OIP)": Bad(
        lambda row: _tensors(row, _set("flight", data=[2**63])),
        400,
        "flight",
        "wrong type",
        path=INFER,
    ),
    "number beyond float64": Bad(lambda row: _literal(row, "temp", b"1e400"), 400, "body"),
    "non-UTF-8 bytes": Bad(lambda row: _literal(row, "carrier", b'"\xff\xfe"'), 400, "body"),
    # Refused by the HTTP parser (h11) before the app: plain text, still no 5xx.
    "bad Content-Length": Bad(
        lambda row: b"", 400, None, path=INFER, headers={"Content-Length": "12abc"}, as_json=False
    ),
}


@pytest.mark.parametrize("case", list(CATALOGUE.values()), ids=list(CATALOGUE))
def test_bad_request_is_refused_and_the_server_keeps_serving(server: Server, case: Bad) -> None:
    body = case.body(server.row)
    with Client(server.url) as client:
        answer = client.request(case.method, case.path, body, case.headers, chunked=case.chunked)

        assert answer.status == case.status, answer.text
        assert "Traceback" not in answer.text and 'File "' not in answer.text
        if case.status == 405:
            assert answer.headers["allow"].split(", ") == ["POST"]
        elif case.as_json:
            assert answer.headers["content-type"] == "application/json"
            document = answer.json()
            assert case.mention in document["error"]
            if case.field is not None:
                first = document["problems"][0]
                assert first["field"] == case.field, document
                assert case.rule in first["rule"], document
                assert first["detail"] is not None
        # The same client (a new connection if the server closed this one) is served.
        server.good(client)
