"""Reading keel.yaml: YAML without duplicate keys; errors that name the key path and the rule."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ValidationError

from keel.errors import ConfigError
from keel.spec._base import SPEC_FILENAME, _describe
from keel.spec.document import ProjectSpec
from keel.spec.release import (
    _GATE_TAGS,
    BeatsChampionGate,
    ContractPassedGate,
    InferenceContractGate,
    MetricThresholdGate,
)

__all__ = ["load_spec", "parse_spec"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys, which PyYAML would silently overwrite."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
            )
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _key_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    previous: int | str | None = None
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif isinstance(previous, int) and item in _GATE_TAGS:
            pass  # pydantic repeats the union tag after the index; the user never wrote it
        elif item in ("str", "SqlSource", "function-before[_from_name(), MetricSpec]"):
            pass  # the member of a union tried; the key path is the field itself
        else:
            parts.append(("." if parts else "") + str(item))
        previous = item
    return "".join(parts) or "(top level)"


_RULES: Final[dict[str, str]] = {
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "timedelta_type": "expected a duration like 30s, 15m, 1h or 7d",
    "timedelta_parsing": "expected a duration like 30s, 15m, 1h or 7d",
}


def _rule(error: Any, siblings: list[str]) -> str:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        close = difflib.get_close_matches(key, siblings, n=1)
        return "unknown key" + (f"; did you mean {close[0]!r}?" if close else "")
    if kind in _RULES:
        return f"{_RULES[kind]}, got {_describe(value)}"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}, got {_describe(value)}"
    if kind == "union_tag_invalid":
        return f"unknown type {ctx.get('tag')!r}: expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return f"missing key 'type': expected one of {', '.join(sorted(_GATE_TAGS))}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = {
            "greater_than": "greater than",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "less_than_equal": "at most",
        }[kind]
        limit = next(iter(ctx.values()), "?")
        return f"expected a value {bound} {limit}, got {_describe(value)}"
    if kind == "string_too_short":
        return "expected a non-empty string"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return f"{error['msg'][0].lower()}{error['msg'][1:]}, got {_describe(value)}"


def _fields_at(loc: tuple[int | str, ...]) -> list[str]:
    """Names of the keys allowed where an unknown key was found, for 'did you mean'."""
    model: Any = ProjectSpec
    for item in loc[:-1]:
        if isinstance(item, int) or model is None:
            continue
        field = getattr(model, "model_fields", {}).get(item)
        if field is None:
            model = _gate_model(item)
            continue
        annotation = field.annotation
        model = _first_model(annotation)
    return list(getattr(model, "model_fields", {}) or [])


def _gate_model(tag: str | int) -> Any:
    models: dict[str | int, type[BaseModel]] = {
        "metric_threshold": MetricThresholdGate,
        "beats_champion": BeatsChampionGate,
        "contract_passed": ContractPassedGate,
        "inference_contract": InferenceContractGate,
    }
    return models.get(tag)


def _first_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        rule = _rule(item, _fields_at(loc) if item["type"] == "extra_forbidden" else [])
        path = _key_path(loc)
        # Cross-field rules already name their key path in the message.
        if item["type"] == "value_error" and loc == () and ": " in rule:
            path, _, rule = rule.partition(": ")
        problem = (path, rule)
        if problem not in problems:
            problems.append(problem)
    return problems


def parse_spec(text: str, *, source: str = SPEC_FILENAME) -> ProjectSpec:
    """Validate keel.yaml text. Raises ConfigError listing every problem with its key path."""
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = exc.problem or str(exc)
        raise ConfigError(
            f"{source}: not valid YAML at {where}: {problem}",
            problems=[("(top level)", f"not valid YAML at {where}: {problem}")],
            hint="fix the YAML syntax; `keel init` writes a commented example",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        rule = f"expected a mapping of sections, got {_describe(document)}"
        raise ConfigError(f"{source}: {rule}", problems=[("(top level)", rule)])
    try:
        return ProjectSpec.model_validate(document)
    except ValidationError as exc:
        problems = _problems(exc)
        lines = "\n".join(f"  {path}: {rule}" for path, rule in problems)
        count = len(problems)
        raise ConfigError(
            f"{source}: {count} problem{'s' if count != 1 else ''}\n{lines}",
            problems=problems,
            hint="fix the keys above; `keel init` writes a commented example",
        ) from None


def load_spec(path: Path) -> ProjectSpec:
    """Read and validate keel.yaml at `path`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file",
            hint="run `keel init` to create a project, or pass --project DIR",
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}): save keel.yaml as UTF-8"
        ) from None
    return parse_spec(text, source=str(path))
