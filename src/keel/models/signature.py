"""The inference contract of a model version: the raw inputs a request carries, and the outputs.

Derived at registration from a sample of the raw training input (before feature code runs), so a
request is checked against the columns users actually send. Stored with the version as a tagged
JSON document; the serving layer calls `validate_request` on every request.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

from keel.contracts.columns import check_column_names
from keel.domain.times import NotATime, parse, time_kind
from keel.errors import ConfigError, DataError
from keel.serial import dump, load

if TYPE_CHECKING:
    from keel.contracts.model import Contract

__all__ = [
    "KIND",
    "InferenceContract",
    "InputField",
    "LogicalType",
    "OutputField",
    "RequestProblem",
    "infer_inference_contract",
    "model_outputs",
    "validate_request",
]

KIND: Final = "keel/inference-contract"
VERSION: Final = 1

LogicalType = Literal["integer", "float", "string", "boolean", "timestamp", "date"]
_LOGICAL_TYPES: Final[tuple[str, ...]] = get_args(LogicalType)


#: A value an input's domain allows (the data contract's domains hold strings or integers).
Allowed = str | int


@dataclass(frozen=True, slots=True)
class InputField:
    """A raw input column; `nullable` is whether the sample it was inferred from had nulls.

    `minimum`, `maximum` and `allowed` are the data contract's range and domain of the column
    when the version was registered (None: the contract set none, or the version predates
    them): values the model never saw in training, which its feature code may not handle.
    """

    name: str
    type: LogicalType
    nullable: bool
    minimum: int | float | None = None
    maximum: int | float | None = None
    allowed: tuple[Allowed, ...] | None = None
    #: `allowed` as a set, for checking requests (computed once, not part of the document).
    allowed_set: frozenset[Allowed] | None = dataclass_field(
        init=False, default=None, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.allowed is not None:
            object.__setattr__(self, "allowed_set", frozenset(self.allowed))

    @property
    def bounded(self) -> bool:
        return self.minimum is not None or self.maximum is not None or self.allowed is not None

    def to_dict(self) -> dict[str, Any]:
        # Bounds a field lacks are left out: documents registered before contracts carried
        # bounds have none, and both read the same.
        return dump(self, exclude_none=True)


@dataclass(frozen=True, slots=True)
class OutputField:
    """One output of a prediction, e.g. `prediction` (integer) or `probability` (float)."""

    name: str
    type: LogicalType


@dataclass(frozen=True, slots=True)
class InferenceContract:
    """What a request must carry and what a response holds."""

    inputs: tuple[InputField, ...]
    outputs: tuple[OutputField, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, "version": VERSION, **dump(self, exclude_none=True)}

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> InferenceContract:
        """Read a document written by `to_dict`; ConfigError names what is wrong."""
        if document.get("kind") != KIND or document.get("version") != VERSION:
            raise ConfigError(
                f"not a {KIND} version {VERSION} document "
                f"(kind={document.get('kind')!r}, version={document.get('version')!r})"
            )
        try:
            return load(cls, document, where="inference contract")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.inputs]

    def bounded_by(self, data: Contract | None) -> InferenceContract:
        """This contract with each input's range and domain from the data contract (the
        columns it names; nothing for a contract of None)."""
        if data is None:
            return self
        columns = {c.name: c for c in data.columns}
        inputs = []
        for spec in self.inputs:
            column = columns.get(spec.name)
            if column is None:
                inputs.append(spec)
                continue
            low = high = None
            if column.range is not None and spec.type in ("integer", "float"):
                low, high = column.range.min, column.range.max
            allowed = None
            if column.domain is not None and spec.type in ("integer", "string"):
                allowed = tuple(column.domain)
            inputs.append(replace(spec, minimum=low, maximum=high, allowed=allowed))
        return InferenceContract(tuple(inputs), self.outputs)


def _logical(value: object, name: object) -> LogicalType:
    if value not in _LOGICAL_TYPES:
        raise ConfigError(
            f"field '{name}': type must be one of {', '.join(_LOGICAL_TYPES)}, got {value!r}"
        )
    return value  # type: ignore[return-value]  # membership in the Literal's args checked above


def _arrow_logical(name: str, arrow_type: pa.DataType) -> LogicalType:
    if pa.types.is_dictionary(arrow_type):  # pandas categoricals arrive as dictionaries
        arrow_type = arrow_type.value_type
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    kind = time_kind(arrow_type)
    if kind is not None:
        return kind
    if pa.types.is_null(arrow_type):
        raise DataError(
            f"input '{name}': every value in the sample is null, so its type cannot be inferred",
            hint="use a sample where the column has values",
        )
    raise DataError(
        f"input '{name}': type {arrow_type} is not supported in requests "
        f"(supported: {', '.join(_LOGICAL_TYPES)})"
    )


def model_outputs(model: Any, target: Any) -> dict[str, LogicalType]:
    """The outputs a fitted model answers with: a classifier (it has `predict_proba`) its
    labels' own type (0/1, true/false or text: feedback is checked against it, responses
    declare it) and the positive class's probability; a regressor a float. `target` is the
    training labels (a pandas Series or a numpy array)."""
    if not hasattr(model, "predict_proba"):
        return {"prediction": "float"}
    from pandas.api import types  # type: ignore[import-untyped,unused-ignore]

    prediction: LogicalType = "string"
    if types.is_bool_dtype(target):
        prediction = "boolean"
    elif types.is_integer_dtype(target):
        prediction = "integer"
    elif types.is_float_dtype(target):
        prediction = "float"
    return {"prediction": prediction, "probability": "float"}


def infer_inference_contract(
    raw_sample: Any,
    outputs: Mapping[str, str] | Sequence[OutputField],
) -> InferenceContract:
    """Inputs from the sample's columns (logical type, observed nullability) plus `outputs`.

    `raw_sample` is a pandas DataFrame or a pyarrow Table of the raw input columns (typed `Any`:
    neither library ships type stubs).

    `outputs` maps names to logical types, e.g. `{"prediction": "integer", "probability":
    "float"}` for a binary classifier.
    """
    if isinstance(raw_sample, pa.Table):
        table = raw_sample
    else:
        try:
            table = pa.Table.from_pandas(_without_time_zones(raw_sample), preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(f"raw sample cannot be typed column by column: {exc}") from exc
    # A request names each input: an input without a name (or two of one name) could never be sent.
    check_column_names([str(name) for name in table.column_names], "the raw inputs")
    inputs = tuple(
        InputField(field.name, _arrow_logical(field.name, field.type), column.null_count > 0)
        for field, column in zip(table.schema, table.columns, strict=True)
    )
    if isinstance(outputs, Mapping):
        output_fields = tuple(OutputField(n, _logical(t, n)) for n, t in outputs.items())
    else:
        output_fields = tuple(OutputField(f.name, _logical(f.type, f.name)) for f in outputs)
    return InferenceContract(inputs, output_fields)


def _without_time_zones(frame: Any) -> Any:
    """Time-zone-aware columns as naive UTC: only the logical type matters here, and pyarrow 25's
    conversion of aware columns trips a pandas 3.1 deprecation warning (Series.values)."""
    aware = [name for name, dtype in frame.dtypes.items() if getattr(dtype, "tz", None)]
    if not aware:
        return frame
    return frame.assign(**{str(name): frame[name].dt.tz_convert(None) for name in aware})


Rule = Literal["missing input", "unknown input", "wrong type", "null not allowed", "not a record"]


@dataclass(frozen=True, slots=True)
class RequestProblem:
    """One way a request breaks its contract: which record, which field, which rule."""

    record: int
    field: str
    rule: Rule
    detail: str

    def __str__(self) -> str:
        return f"record {self.record}, field '{self.field}': {self.rule} ({self.detail})"

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


def validate_request(
    contract: InferenceContract, records: Sequence[Mapping[str, Any]] | Mapping[str, Any]
) -> list[RequestProblem]:
    """Check JSON-like records against the contract's inputs; an empty list means valid.

    Values are checked as they arrive over JSON: an integer field accepts integral floats
    (`3.0`), a float field accepts integers, a timestamp is an ISO 8601 string (or a datetime),
    a date a `YYYY-MM-DD` string (or a date).
    """
    rows = [records] if isinstance(records, Mapping) else list(records)
    fields = {f.name: f for f in contract.inputs}
    problems: list[RequestProblem] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            problems.append(
                RequestProblem(index, "", "not a record", f"expected an object, got {_kind(row)}")
            )
            continue
        for name in fields.keys() - row.keys():
            problems.append(RequestProblem(index, name, "missing input", "the model needs it"))
        for name in row.keys() - fields.keys():
            problems.append(
                RequestProblem(index, str(name), "unknown input", "the model does not take it")
            )
        for name, spec in fields.items():
            if name not in row:
                continue
            value = row[name]
            if _is_null(value):
                if not spec.nullable:
                    problems.append(
                        RequestProblem(
                            index, name, "null not allowed", "it had no nulls in training"
                        )
                    )
            elif not _matches(spec.type, value):
                problems.append(
                    RequestProblem(
                        index, name, "wrong type", f"expected {spec.type}, got {_kind(value)}"
                    )
                )
    problems.sort(key=lambda p: (p.record, p.field, p.rule))
    return problems


def _is_null(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _matches(logical: LogicalType, value: object) -> bool:
    if logical == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # bool is an int subclass, but True is not a number here
    if logical == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if logical == "float":
        return isinstance(value, int | float)
    if logical == "string":
        return isinstance(value, str)
    if logical == "date" and isinstance(value, dt.date):
        return not isinstance(value, dt.datetime)
    if logical == "timestamp" and isinstance(value, dt.datetime | dt.date):
        return True
    try:
        parse(value, logical)
    except NotATime:
        return False
    return True


def _kind(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string"}.get(
        type(value), type(value).__name__
    )
