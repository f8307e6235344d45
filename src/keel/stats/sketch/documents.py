"""Checks of stored sketch documents as they are read back: each key's type and range."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__: list[str] = []


def _integer(document: Mapping[str, Any], key: str, where: str, minimum: int | None = 0) -> int:
    value = document.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{where}.{key}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{where}.{key}: must be at least {minimum}, got {value}")
    return value


def _optional_float(document: Mapping[str, Any], key: str, where: str) -> float | None:
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{where}.{key}: expected a finite number or null, got {value!r}")
    return float(value)


def _moment(document: Mapping[str, Any], key: str, where: str) -> float:
    if key not in document:
        raise ValueError(f"{where}.{key}: required")
    value = _optional_float(document, key, where)
    # null: the moment overflowed when written (values beyond ~1e154).
    return math.nan if value is None else value
