"""Values held to the inference contract: names, types, bounds and row counts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from keel.domain.times import EXPECTED_FORMAT, NotATime, parse
from keel.models.signature import InferenceContract, LogicalType
from keel.serving.codec.problems import BadRequest, Batch, Problem

__all__ = ["bound_problems"]


#: Integer inputs become int64 columns: a value outside this range would overflow there.
_INT64_RANGE: Final = (-(2**63), 2**63 - 1)


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


def _summary(problems: Sequence[Problem]) -> str:
    first = problems[0]
    where = f"{first.field}" + (f" (record {first.record})" if first.record is not None else "")
    more = f"; and {len(problems) - 1} more" if len(problems) > 1 else ""
    return f"{where}: {first.rule}: {first.detail}{more}"
