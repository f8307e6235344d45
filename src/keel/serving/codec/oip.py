"""The Open Inference Protocol (v2 REST): requests decoded, responses encoded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from keel.models.signature import InferenceContract, LogicalType
from keel.serving.codec.problems import BadRequest, Batch, Problem
from keel.serving.codec.values import (
    _check_values,
    _flatten,
    _kind,
    _names,
    _require_object,
    _summary,
    _too_many,
)

__all__ = ["OIP_DATATYPES", "decode_oip", "encode_oip", "oip_datatype"]


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
