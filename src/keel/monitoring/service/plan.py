"""How `keel monitor` cuts windows: a duration, by prediction or event time, or a row count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from keel.errors import ConfigError

if TYPE_CHECKING:
    pass

__all__ = ["DEFAULT_WINDOWS", "WindowPlan", "parse_window"]


#: How many windows `keel monitor` looks back over by default.
DEFAULT_WINDOWS: Final = 14


@dataclass(frozen=True)
class WindowPlan:
    """How windows are cut: a duration (by prediction or event time) or a row count."""

    duration: timedelta | None = None
    rows: int | None = None
    time: str = "prediction"  # "prediction" or "event"

    def describe(self) -> str:
        if self.rows is not None:
            return f"every {self.rows:,} predictions"
        assert self.duration is not None
        return f"{_duration(self.duration)} by {self.time} time"


def parse_window(text: str, *, time: str = "prediction") -> WindowPlan:
    """`1h`, `1d`, `15m` (a duration) or `5000` (that many predictions per window)."""
    from keel.domain.duration import parse_duration

    value = text.strip()
    if value.isdigit():
        if int(value) < 1:
            raise ConfigError(
                "--window: must be positive", problems=[("--window", "must be positive")]
            )
        return WindowPlan(rows=int(value), time=time)
    try:
        duration = parse_duration(value)
    except ValueError as exc:
        raise ConfigError(
            f"--window: {exc}",
            problems=[("--window", "a duration such as 1h or 1d, or a number of predictions")],
        ) from exc
    if duration <= timedelta(0):
        raise ConfigError("--window: must be positive", problems=[("--window", "must be > 0")])
    return WindowPlan(duration=duration, time=time)


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
