"""Dataclasses to JSON-ready documents and back: keel's one serialisation mechanism.

`dump(obj)` turns a dataclass into the document keel stores, prints with `--json` or answers
over HTTP; `load(cls, document, where)` reads one back, checked field by field: a malformed
document raises `ValueError` naming the field and the rule (`where.gates[0].passed: Input
should be a valid boolean`), never a `KeyError` from deep inside.

Both come from pydantic's `TypeAdapter` on the plain dataclass, with keel's conventions set
once here rather than in each class:

- datetimes as `datetime.isoformat()` (`+00:00`, as every stored document has them; pydantic
  writes `Z`);
- numbers and `Any` values as they are: a float field holding an int stays `3` (not `3.0`),
  NaN stays NaN (pydantic writes null), so documents are byte for byte what they were;
- `Digest` as its text, parsed back with `Digest.parse`;
- enums as their values, dates as ISO strings, paths as strings, tuples as lists (pydantic's);
- fields `__init__` does not take (caches) are not written, and rebuilt on load;
- on load, values are checked, not converted: `"5"` is not an integer nor `"no"` a boolean
  (an integer is a number); a union is one error naming its members.

The domain stays free of pydantic: this module sits above `keel.domain` and the domain never
imports it; classes above the domain delegate their `to_dict`/`from_dict` here. The serving
hot path keeps its hand-written conversions (benchmarks/serialisation.py: a `TypeAdapter`
takes 1.4 to 18 times as long as a dict literal there); see docs/design-notes.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import Enum
from typing import Any, TypeVar, cast

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic_core import SchemaSerializer, SchemaValidator, core_schema

from keel.domain.digest import Digest

__all__ = ["dump", "load"]

T = TypeVar("T")

_ISO_TYPES: dict[str, type[date] | type[time]] = {"datetime": datetime, "date": date, "time": time}
#: Types pydantic does not know, each with its (parse, to text) pair.
_TEXT_TYPES: dict[type, tuple[Callable[[str], object], Callable[[Any], str]]] = {
    Digest: (Digest.parse, str),
}


def _isoformat(value: date | time) -> str:
    return value.isoformat()


def _enum_value(value: Enum) -> Any:
    return value.value


def _as_list(value: Any, handler: core_schema.SerializerFunctionWrapHandler) -> list[Any]:
    return list(handler(value))


def _text_schema(
    parse: Callable[[str], object], text: Callable[[Any], str], cls: type
) -> core_schema.CoreSchema:
    def validate(value: object) -> object:
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise ValueError(f"expected {cls.__name__} as text, got {type(value).__name__}")
        return parse(value)

    return core_schema.no_info_plain_validator_function(
        validate,
        serialization=core_schema.plain_serializer_function_ser_schema(text, when_used="always"),
    )


_STRICT: dict[str, str] = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "a boolean",
}


def _describe(choice: Any) -> str:
    schema = choice[0] if isinstance(choice, tuple) else choice
    kind = str(schema.get("type", ""))
    return _STRICT.get(kind) or {"none": "null", "literal": "one of the names"}.get(kind, kind)


def _keep_ref(node: dict[str, Any], schema: core_schema.CoreSchema) -> core_schema.CoreSchema:
    if "ref" in node:
        return cast(core_schema.CoreSchema, {**schema, "ref": node["ref"]})
    return schema


def _always(function: Callable[[Any], Any]) -> core_schema.SerSchema:
    return core_schema.plain_serializer_function_ser_schema(function, when_used="always")


def _patch(node: Any) -> Any:
    """The schema with keel's conventions (see the module docstring) applied at every level.

    Documents are dumped in pydantic's python mode, where numbers and `Any` values are kept
    as they are; these serialisers give the JSON forms keel's documents have always had."""
    if isinstance(node, list):
        return [_patch(item) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind in {"dataclass", "is-instance"} and node.get("cls") in _TEXT_TYPES:
        parse, text = _TEXT_TYPES[node["cls"]]
        return _keep_ref(node, _text_schema(parse, text, node["cls"]))
    if kind in _ISO_TYPES:
        # keel's own parsing, as documents have always been read: pydantic would also take
        # numbers as Unix times, and gives its own tzinfo instead of datetime.UTC.
        cls = _ISO_TYPES[kind]
        return _keep_ref(node, _text_schema(cls.fromisoformat, _isoformat, cls))
    patched = {key: _patch(value) for key, value in node.items()}
    if kind in _STRICT:
        # A stored or received document says what it means: "5" is not the number 5 nor
        # "no" a boolean (pydantic's lax mode would convert both).
        patched["strict"] = True
    elif kind == "union" and "custom_error_type" not in node:
        # One error for the field, not one per member of the union (`minimum.int`, ...).
        patched["custom_error_type"] = "union"
        patched["custom_error_message"] = "Input should be " + " or ".join(
            _describe(choice) for choice in node["choices"]
        )
    if kind == "dataclass-field" and node.get("init") is False:
        # A field that __init__ does not take (a cache computed from the others) is not part
        # of the document: writing it would only be read back as something to ignore.
        patched["serialization_exclude"] = True
    if kind == "enum":
        patched["serialization"] = _always(_enum_value)
    elif kind == "lax-or-strict" and node["lax_schema"].get("custom_error_type") == "path_type":
        patched["serialization"] = _always(str)
    elif kind in {"tuple", "set", "frozenset"}:
        patched["serialization"] = core_schema.wrap_serializer_function_ser_schema(
            _as_list, when_used="always"
        )
    return patched


@dataclass(frozen=True, slots=True)
class _Codec:
    serializer: SchemaSerializer
    validator: SchemaValidator


#: Built once per class on first use (building a schema takes milliseconds, using it microseconds).
_CODECS: dict[type, _Codec] = {}


def _codec(cls: type) -> _Codec:
    codec = _CODECS.get(cls)
    if codec is None:
        # Wrapped in a 1-tuple: pydantic takes a config only for a type that has none of its
        # own, and the dataclasses (outside keel.domain's reach) get theirs from the wrapper.
        wrapper: Any = tuple[cls]  # type: ignore[valid-type] # a type known at run time
        adapter: TypeAdapter[Any] = TypeAdapter(
            wrapper, config=ConfigDict(arbitrary_types_allowed=True)
        )
        schema = cast(core_schema.CoreSchema, _patch(adapter.core_schema))
        codec = _CODECS[cls] = _Codec(SchemaSerializer(schema), SchemaValidator(schema))
    return codec


def dump(
    obj: object,
    *,
    exclude_none: bool = False,
    after: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """`obj` (a dataclass) as a JSON-ready document, its fields in declaration order.

    `after` adds derived values (a rate, a verdict) right after the field each is computed
    from: `after={"nulls": {"null_rate": 0.1}}`."""
    # warnings=False: a value of another type than its field's (numpy's int64 in an int field)
    # is written as it is, as a dict literal would, not warned about.
    document = _codec(type(obj)).serializer.to_python(
        (obj,), mode="python", exclude_none=exclude_none, warnings=False
    )
    fields = cast(dict[str, Any], document[0])
    if not after:
        return fields
    missing = set(after) - set(fields)
    if missing:
        raise ValueError(f"{type(obj).__name__} has no field {', '.join(sorted(missing))}")
    placed: dict[str, Any] = {}
    for key, value in fields.items():
        placed[key] = value
        placed.update(after.get(key, {}))
    return placed


def load(cls: type[T], document: Mapping[str, Any], where: str = "document") -> T:
    """`document` read as a `cls`; `ValueError` naming each wrong field and its rule."""
    try:
        return cast(T, _codec(cls).validator.validate_python((document,))[0])
    except ValidationError as exc:
        raise ValueError(_message(where, exc)) from None


def _message(where: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        path = where
        for part in error["loc"][1:]:  # [0] is the 1-tuple's index
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        problems.append(f"{path}: {error['msg']}")
    return "; ".join(problems)
