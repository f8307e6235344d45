"""Requests in, responses out: the Open Inference Protocol (v2 REST) and plain JSON records.

Everything a client sends is checked here against the model's inference contract before
the model sees it: malformed JSON, too deep or too large documents, missing and unknown
inputs, wrong types, nulls where the model had none, a tensor whose shape and data
disagree. Each problem names the field and the rule, and becomes a 4xx; nothing a client
sends can make the model raise.

Tabular requests follow MLServer's pandas codec: one named input tensor per column, shape
`[N]` or `[N, 1]`, strings, timestamps (ISO 8601) and dates (`YYYY-MM-DD`) as BYTES.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from keel.domain.times import EXPECTED_FORMAT, TIME_KINDS, NotATime, parse, to_pandas
from keel.models.signature import InferenceContract, LogicalType

__all__ = [
    "OIP_DATATYPES",
    "BadRequest",
    "Batch",
    "Problem",
    "bound_problems",
    "decode_oip",
    "decode_records",
    "encode_oip",
    "oip_datatype",
    "parse_json",
    "to_frame",
]

#: How deeply a request document may nest (a tabular request needs 4 levels, feedback 3).
MAX_DEPTH: Final = 16
#: Integer inputs become int64 columns: a value outside this range would overflow there.
_INT64_RANGE: Final = (-(2**63), 2**63 - 1)

_INTEGER_TYPES: Final = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)
_FLOAT_TYPES: Final = frozenset({"FP16", "FP32", "FP64"})
#: OIP datatypes each logical type accepts.
OIP_DATATYPES: Final[dict[LogicalType, frozenset[str]]] = {
    "integer": _INTEGER_TYPES | _FLOAT_TYPES,  # integral floats are accepted
    "float": _FLOAT_TYPES | _INTEGER_TYPES,
    "boolean": frozenset({"BOOL"}),
    "string": frozenset({"BYTES"}),
    "timestamp": frozenset({"BYTES"}),
    "date": frozenset({"BYTES"}),
}
_DECLARED: Final[dict[LogicalType, str]] = {
    "integer": "INT64",
    "float": "FP64",
    "boolean": "BOOL",
    "string": "BYTES",
    "timestamp": "BYTES",
    "date": "BYTES",
}


def oip_datatype(logical: LogicalType) -> str:
    """The OIP datatype a model's metadata declares for a logical type."""
    return _DECLARED[logical]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request: which field, which rule, and what was seen.

    Its document is written by hand, not with keel.serial: every refused request writes
    them, and a dict literal is several times as fast (benchmarks/serialisation.py)."""

    field: str
    rule: str
    detail: str
    record: int | None = None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"field": self.field, "rule": self.rule, "detail": self.detail}
        if self.record is not None:
            document["record"] = self.record
        return document


class BadRequest(Exception):
    """A request keel refuses, with the HTTP status and every problem found."""

    def __init__(
        self,
        status: int,
        message: str,
        problems: Sequence[Problem] = (),
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = list(problems)
        #: More keys of the error document (the model and exception of a 422).
        self.details = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.message,
            "problems": [p.to_dict() for p in self.problems],
            **self.details,
        }


@dataclass(frozen=True)
class Batch:
    """A decoded, validated request: columns by input name, and how many rows."""

    columns: dict[str, list[Any]]
    rows: int
    client_id: str | None = None
    outputs: tuple[str, ...] | None = None  # the outputs asked for (OIP); None: all
    parameters: Mapping[str, Any] = field(default_factory=dict)


def parse_json(body: bytes) -> Any:
    """The JSON document in `body`; `BadRequest` 400 for malformed or too deeply nested JSON.

    Every JSON body keel's servers read goes through here (`/predict`, `/v2`, `/v1/feedback`
    and `/api/v1`), so one depth bound holds everywhere: Python's own parser would recurse
    until a `RecursionError`.

    NaN and Infinity are not JSON and are refused here (Python's own parser would accept them).
    """
    if not body.strip():
        raise BadRequest(
            400,
            "the request body is empty: expected a JSON object",
            [Problem("body", "a JSON object", "empty")],
        )
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise _too_deep() from None  # orjson's own bound (1024), far above ours
        raise _non_finite(body, exc) or BadRequest(
            400, f"malformed JSON: {exc}", [Problem("body", "valid JSON", str(exc))]
        ) from None
    _check_depth(document)
    # A NUL can only enter a JSON string as the escape \u0000; no store keeps it in text
    # (PostgreSQL refuses it, and a row that cannot be written would stall the prediction log
    # or the labels), so it is refused at the edge. The byte search costs nothing on the usual
    # request; only a hit walks the document to name the field.
    if b"\\u0000" in body:
        where = _nul_path(document, "")
        if where is not None:
            raise BadRequest(
                400,
                f"{where}: text must not contain NUL characters (\\u0000)",
                [Problem(where, "text without NUL characters", "contains \\u0000")],
            )
    return document


def _nul_path(value: Any, path: str) -> str | None:
    """Where the first string holding a NUL is (`records[0].carrier`, `id`), or None."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here
            found = _nul_path(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


#: What clients (Python's json, JavaScript's JSON.stringify of a NaN is null) may send for a
#: missing number; none of them is JSON, longest first so that -Infinity wins over Infinity.
_NON_FINITE: Final = ("-Infinity", "+Infinity", "Infinity", "-NaN", "NaN")
#: The key right before a value: `"name": ` (with an opening bracket for a tensor's data).
_KEY_BEFORE: Final = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*\[?[^\[\]{}:"]*$')
_TENSOR_NAME: Final = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _unquote(text: str) -> str:
    try:
        return str(json.loads(f'"{text}"'))
    except ValueError:
        return text


def _non_finite(body: bytes, exc: orjson.JSONDecodeError) -> BadRequest | None:
    """A 400 that names a NaN or Infinity literal, where it is, and what to send instead."""
    text = body.decode("utf-8", errors="replace")
    start = exc.pos - 1 if 0 < exc.pos <= len(text) and text[exc.pos - 1] in "+-" else exc.pos
    literal = next((word for word in _NON_FINITE if text.startswith(word, start)), None)
    if literal is None:
        return None
    before = text[:start]
    line = before.count("\n") + 1
    column = start - (before.rfind("\n") + 1) + 1
    field = "body"
    key = _KEY_BEFORE.search(before)
    if key is not None:
        field = _unquote(key.group(1))
        if field == "data":
            # An OIP tensor: its name usually comes before its data.
            names = _TENSOR_NAME.findall(before)
            field = _unquote(names[-1]) if names else field
    where = f"line {line}, column {column}"
    message = (
        f"{field}: {literal} is not valid JSON ({where}); send null for a missing value"
        if field != "body"
        else f"{literal} is not valid JSON ({where}); send null for a missing value"
    )
    return BadRequest(
        400,
        message,
        [
            Problem(
                field,
                "a JSON value (NaN and Infinity are not JSON)",
                f"got {literal} at {where}; send null for a missing value",
            )
        ],
    )


def _too_deep() -> BadRequest:
    return BadRequest(
        400,
        f"the JSON document nests deeper than {MAX_DEPTH} levels",
        [Problem("body", f"at most {MAX_DEPTH} levels deep", "too deeply nested")],
    )


def _check_depth(document: Any) -> None:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            # Scalars need no visit; only containers can nest further.
            stack.extend((item, depth + 1) for item in value if isinstance(item, dict | list))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "float", str: "string"}.get(
        type(value), type(value).__name__
    )


def _matches(logical: LogicalType, value: object) -> bool:
    if logical == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # bool is an int subclass, but True is not a number here
    if logical == "integer":
        if not isinstance(value, int | float):
            return False
        if isinstance(value, float) and not value.is_integer():
            return False
        return _INT64_RANGE[0] <= value <= _INT64_RANGE[1]
    if logical == "float":
        return isinstance(value, int | float) and math.isfinite(value)
    if logical == "string":
        return isinstance(value, str)
    try:
        parse(value, logical)
    except NotATime:
        return False
    return True


def _check_values(
    contract: InferenceContract, columns: Mapping[str, Sequence[Any]], rows: int
) -> list[Problem]:
    problems: list[Problem] = []
    for spec in contract.inputs:
        values = columns[spec.name]
        for index, value in enumerate(values):
            if value is None:
                if not spec.nullable:
                    problems.append(
                        Problem(spec.name, "null not allowed", "it had no nulls in training", index)
                    )
            elif not _matches(spec.type, value):
                problems.append(
                    Problem(
                        spec.name,
                        "wrong type",
                        f"expected {_expected(spec.type)}, got {_kind(value)} {_short(value)}",
                        index,
                    )
                )
            if len(problems) >= 50:
                return problems
    return problems


def bound_problems(contract: InferenceContract, batch: Batch) -> list[Problem]:
    """Values of a decoded batch outside the ranges and domains its version was registered
    with (the data contract's): each names the input, the row and the rule. Types were
    checked by the decoder, so only numbers meet a range."""
    problems: list[Problem] = []
    for spec in contract.inputs:
        if not spec.bounded:
            continue
        allowed = spec.allowed_set
        for index, value in enumerate(batch.columns[spec.name]):
            if value is None:
                continue
            rule = None
            if allowed is not None and value not in allowed:
                assert spec.allowed is not None
                shown = ", ".join(repr(v) for v in spec.allowed[:12])
                more = f", ... ({len(spec.allowed)} values)" if len(spec.allowed) > 12 else ""
                rule = f"one of the values seen in training: {shown}{more}"
            elif isinstance(value, int | float) and not isinstance(value, bool):
                if spec.minimum is not None and value < spec.minimum:
                    rule = f"at least {spec.minimum} (the data contract's range)"
                elif spec.maximum is not None and value > spec.maximum:
                    rule = f"at most {spec.maximum} (the data contract's range)"
            if rule is not None:
                problems.append(Problem(spec.name, rule, f"got {_short(value)}", index))
                if len(problems) >= 50:
                    return problems
    return problems


def _expected(logical: LogicalType) -> str:
    if logical == "date" or logical == "timestamp":
        return EXPECTED_FORMAT[logical]
    return "integer (64-bit)" if logical == "integer" else logical


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _names(contract: InferenceContract, given: Sequence[str]) -> list[Problem]:
    expected = set(contract.input_names)
    seen = set(given)
    problems = [
        Problem(name, "missing input", "the model needs it")
        for name in contract.input_names
        if name not in seen
    ]
    problems.extend(
        Problem(name, "unknown input", "the model does not take it")
        for name in given
        if name not in expected
    )
    return problems


def _require_object(document: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(document, dict):
        raise BadRequest(
            400,
            f"{what} must be a JSON object, got {_kind(document)}",
            [Problem("body", "a JSON object", f"got {_kind(document)}")],
        )
    return document


def _too_many(rows: int, max_rows: int) -> BadRequest:
    return BadRequest(
        413,
        f"the request carries {rows:,} rows; the limit is {max_rows:,} (serving.max_rows)",
        [Problem("inputs", f"at most {max_rows:,} rows", f"got {rows:,}")],
    )


def _flatten(data: Any) -> list[Any] | None:
    if not isinstance(data, list):
        return None
    if all(not isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            if any(isinstance(inner, list) for inner in item):
                return None  # deeper than [N, 1] tabular data
            flat.extend(item)
        else:
            flat.append(item)
    return flat


def decode_oip(document: Any, contract: InferenceContract, *, max_rows: int) -> Batch:
    """An OIP v2 inference request, one input tensor per column, validated."""
    request = _require_object(document, "an inference request")
    problems: list[Problem] = []
    for key in request:
        if key not in {"id", "inputs", "outputs", "parameters"}:
            problems.append(
                Problem(key, "unknown field", "OIP requests have id, inputs, outputs, parameters")
            )
    client_id = request.get("id")
    if client_id is not None and not isinstance(client_id, str):
        problems.append(Problem("id", "a string", f"got {_kind(client_id)}"))
    parameters = request.get("parameters") or {}
    if not isinstance(parameters, dict):
        problems.append(Problem("parameters", "a JSON object", f"got {_kind(parameters)}"))
        parameters = {}
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        problems.append(Problem("inputs", "a non-empty list of tensors", f"got {_kind(inputs)}"))
        raise BadRequest(400, "the request has no input tensors", problems)
    columns: dict[str, list[Any]] = {}
    lengths: dict[str, int] = {}
    given: list[str] = []
    types = {f.name: f.type for f in contract.inputs}
    for position, tensor in enumerate(inputs):
        where = f"inputs[{position}]"
        if not isinstance(tensor, dict):
            problems.append(Problem(where, "a tensor object", f"got {_kind(tensor)}"))
            continue
        name = tensor.get("name")
        if not isinstance(name, str) or not name:
            problems.append(Problem(f"{where}.name", "a non-empty string", f"got {_kind(name)}"))
            continue
        if name in given:
            problems.append(Problem(name, "one tensor per input", "given twice"))
            continue
        given.append(name)
        shape = tensor.get("shape")
        datatype = tensor.get("datatype")
        data = _flatten(tensor.get("data"))
        if data is None:
            problems.append(
                Problem(f"{name}.data", "a list of values (shape [N] or [N, 1])", "not tabular")
            )
            continue
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
            or len(shape) > 2
            or (len(shape) == 2 and shape[1] != 1)
        ):
            problems.append(Problem(f"{name}.shape", "[N] or [N, 1]", f"got {shape!r}"[:80]))
            continue
        if shape[0] != len(data):
            problems.append(
                Problem(
                    f"{name}.shape",
                    "shape matches data",
                    f"shape says {shape[0]} values, data has {len(data)}",
                )
            )
            continue
        logical = types.get(name)
        if logical is not None and datatype not in OIP_DATATYPES[logical]:
            accepted = ", ".join(sorted(OIP_DATATYPES[logical]))
            problems.append(
                Problem(
                    f"{name}.datatype",
                    f"one of {accepted}",
                    f"the model takes {logical}, got {datatype!r}",
                )
            )
            continue
        columns[name] = data
        lengths[name] = len(data)
    problems.extend(_names(contract, given))
    if problems:
        raise BadRequest(400, _summary(problems), problems)
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{n}: {k}" for n, k in lengths.items())
        raise BadRequest(
            400,
            "input tensors have different lengths",
            [Problem("inputs", "one length for every column", detail)],
        )
    rows = next(iter(lengths.values()))
    if rows == 0:
        raise BadRequest(
            400, "the request has no rows", [Problem("inputs", "at least one row", "0")]
        )
    if rows > max_rows:
        raise _too_many(rows, max_rows)
    problems = _check_values(contract, columns, rows)
    if problems:
        raise BadRequest(400, _summary(problems), problems)
    outputs = request.get("outputs")
    wanted: tuple[str, ...] | None = None
    if outputs is not None:
        known = {f.name for f in contract.outputs}
        if not isinstance(outputs, list):
            raise BadRequest(
                400, "outputs must be a list", [Problem("outputs", "a list", _kind(outputs))]
            )
        names = [o.get("name") if isinstance(o, dict) else None for o in outputs]
        bad = [
            Problem("outputs", f"one of {', '.join(sorted(known))}", repr(n))
            for n in names
            if n not in known
        ]
        if bad:
            raise BadRequest(400, "unknown output requested", bad)
        wanted = tuple(str(n) for n in names)
    return Batch(columns, rows, client_id, wanted, parameters)


def decode_records(document: Any, contract: InferenceContract, *, max_rows: int) -> Batch:
    """Plain JSON: `{"records": [{...}, ...]}` (also `instances`, MLflow's `dataframe_records`,
    or a bare list of records)."""
    records: Any
    if isinstance(document, list):
        records = document
    elif isinstance(document, dict):
        keys = [k for k in ("records", "instances", "dataframe_records") if k in document]
        extra = [
            k for k in document if k not in {"records", "instances", "dataframe_records", "id"}
        ]
        if len(keys) != 1 or extra:
            raise BadRequest(
                400,
                'expected {"records": [{...}, ...]}',
                [
                    Problem(
                        extra[0] if extra else "records",
                        "exactly one of records, instances, dataframe_records",
                        "",
                    )
                ],
            )
        records = document[keys[0]]
    else:
        raise BadRequest(
            400,
            f"expected a JSON object, got {_kind(document)}",
            [Problem("body", "a JSON object", _kind(document))],
        )
    if not isinstance(records, list) or not records:
        raise BadRequest(
            400,
            "records must be a non-empty list",
            [Problem("records", "a non-empty list", _kind(records))],
        )
    if len(records) > max_rows:
        raise _too_many(len(records), max_rows)
    names = contract.input_names
    expected = set(names)
    problems: list[Problem] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(
                Problem("records", "an object per record", f"got {_kind(record)}", index)
            )
            continue
        for name in names:
            if name not in record:
                problems.append(Problem(name, "missing input", "the model needs it", index))
        for name in record:
            if name not in expected:
                problems.append(
                    Problem(str(name), "unknown input", "the model does not take it", index)
                )
        if len(problems) >= 50:
            break
    if problems:
        raise BadRequest(400, _summary(problems), problems)
    columns = {name: [record[name] for record in records] for name in names}
    problems = _check_values(contract, columns, len(records))
    if problems:
        raise BadRequest(400, _summary(problems), problems)
    client_id = document.get("id") if isinstance(document, dict) else None
    return Batch(columns, len(records), client_id if isinstance(client_id, str) else None)


def _summary(problems: Sequence[Problem]) -> str:
    first = problems[0]
    where = f"{first.field}" + (f" (record {first.record})" if first.record is not None else "")
    more = f"; and {len(problems) - 1} more" if len(problems) > 1 else ""
    return f"{where}: {first.rule}: {first.detail}{more}"


def to_frame(batch: Batch, contract: InferenceContract) -> Any:
    """The validated columns as the pandas DataFrame the model's feature code expects."""
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    data: dict[str, Any] = {}
    for spec in contract.inputs:
        values = batch.columns[spec.name]
        if spec.type in TIME_KINDS:
            data[spec.name] = to_pandas(pa.array(values, pa.string()), spec.type)
        elif spec.type == "float" or (spec.type == "integer" and any(v is None for v in values)):
            data[spec.name] = np.array(
                [np.nan if v is None else v for v in values], dtype="float64"
            )
        elif spec.type == "integer":
            data[spec.name] = np.array(values, dtype="int64")
        elif spec.type == "boolean" and not any(v is None for v in values):
            data[spec.name] = np.array(values, dtype=bool)
        else:
            data[spec.name] = np.array(values, dtype=object)
    return pd.DataFrame(data, index=pd.RangeIndex(batch.rows))


def encode_oip(
    *,
    model: str,
    version: int,
    prediction_ids: Sequence[str],
    outputs: Mapping[str, Sequence[Any]],
    contract: InferenceContract,
    wanted: Sequence[str] | None,
    parameters: Mapping[str, Any],
) -> dict[str, Any]:
    """An OIP v2 inference response; `id` is the (first) prediction id."""
    types = {f.name: f.type for f in contract.outputs}
    names = list(wanted) if wanted is not None else [f.name for f in contract.outputs]
    tensors = [
        {
            "name": name,
            "shape": [len(outputs[name])],
            "datatype": _DECLARED[types[name]],
            "data": list(outputs[name]),
        }
        for name in names
        if name in outputs
    ]
    response_parameters = dict(parameters)
    if len(prediction_ids) > 1:
        response_parameters["prediction_ids"] = list(prediction_ids)
    return {
        "model_name": model,
        "model_version": str(version),
        "id": prediction_ids[0],
        "parameters": response_parameters,
        "outputs": tensors,
    }
