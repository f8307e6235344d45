"""What every section of keel.yaml shares: refusing unknown keys, durations, entry points."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from keel.domain.duration import format_duration, parse_duration

__all__ = ["SPEC_FILENAME", "SPEC_VERSION", "Duration", "EntryPoint"]

SPEC_FILENAME: Final = "keel.yaml"
SPEC_VERSION: Final = 1

_ENTRY_POINT = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise ValueError(f"expected a duration like 30s, 15m, 1h or 7d, got {value!r}")
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
]


def _entry_point(value: object) -> object:
    if not isinstance(value, str) or not _ENTRY_POINT.match(value):
        raise ValueError(f"expected 'module:function' (e.g. 'features:build'), got {value!r}")
    return value


EntryPoint = Annotated[str, BeforeValidator(_entry_point)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    kind = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(type(value))
    if kind and not isinstance(value, str | bool):
        return kind
    return text
