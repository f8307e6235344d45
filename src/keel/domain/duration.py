"""Durations as people write them in keel.yaml and on the command line: `200ms`, `90s`, `15m`,
`1h`, `7d`."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_age", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|[smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """`"1h"` -> 1 hour. Raises ValueError naming the accepted form."""
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(
            f"expected a duration like 200ms, 30s, 15m, 1h, 7d or 2w, got {text!r}",
        )
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if value <= 0:
        raise ValueError(f"a duration must be positive, got {text!r}")
    return timedelta(seconds=value)


def format_duration(delta: timedelta) -> str:
    """The shortest exact form: 3600 s -> `1h`, 90 s -> `90s`."""
    seconds = delta.total_seconds()
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds < 1 and round(seconds * 1000, 6).is_integer():
        return f"{round(seconds * 1000):d}ms"
    return f"{seconds:g}s"


def format_age(delta: timedelta) -> str:
    """An age people read at a glance, to its two largest units: `183d 4h`, `5h 12m`, `40s`."""
    seconds = max(0, int(delta.total_seconds()))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2]) or "0s"
