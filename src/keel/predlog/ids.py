"""Prediction ids: 32 lowercase hex characters in the UUIDv7 layout, like run ids.

The first 48 bits are the time the prediction was made, in milliseconds, so ids sort by time
and an id alone says which part of the prediction log to look in.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from keel.domain.run import new_run_id

__all__ = ["is_prediction_id", "new_prediction_id", "normalise_prediction_id", "prediction_time"]

_ID: Final = re.compile(r"^[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$")
_HEX32: Final = re.compile(r"^[0-9a-f]{32}$")
_DASHED: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def new_prediction_id(now: float | None = None) -> str:
    """A new, time-ordered, globally unique prediction id."""
    return new_run_id(now)


def is_prediction_id(text: str) -> bool:
    """Whether `text` has the shape of a prediction id."""
    return _ID.match(text) is not None


def normalise_prediction_id(text: str) -> str | None:
    """The id as keel stores it (32 lowercase hex characters) from the ways a user may paste
    it: surrounding spaces, upper case, or the dashed UUID form; None when it is not 32 hex
    characters at all.

    Well-formed text that is not in the UUIDv7 layout is returned too: it is an id keel never
    issued, which the caller reports as not found rather than as malformed.
    """
    lowered = text.strip().lower()
    if _DASHED.match(lowered):
        lowered = lowered.replace("-", "")
    return lowered if _HEX32.match(lowered) else None


def prediction_time(prediction_id: str) -> datetime:
    """When the prediction was made (millisecond precision), read from its id."""
    return datetime.fromtimestamp(int(prediction_id[:12], 16) / 1000, tz=UTC)
