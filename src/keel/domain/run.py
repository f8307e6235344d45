"""Training runs: one execution of the pipeline, what it logged, and where it came from.

A `Run` carries its lineage (dataset, code hashes, git state, environment, seed) beside its
status; what the training code logs arrives as `Param`s, `Metric`s and `Tag`s, the objects it
stores as `RunArtifact`s, and each pipeline step leaves a `StepRecord`. The validation rules for
what user code may log live here too, so the tracker and the store apply the same ones.
Pure: no storage, no I/O.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from keel.domain.digest import Digest
from keel.errors import ConfigError

__all__ = [
    "KEY_MAX_LENGTH",
    "RUN_ID_MIN_PREFIX",
    "RUN_STATUSES",
    "CachedStep",
    "Metric",
    "MetricSummary",
    "Param",
    "Run",
    "RunArtifact",
    "RunStatus",
    "StepOutcome",
    "StepRecord",
    "Tag",
    "check_key",
    "is_run_id",
    "metric_value",
    "new_run_id",
    "param_text",
]

RunStatus = Literal["running", "completed", "failed"]
RUN_STATUSES: Final[tuple[RunStatus, ...]] = ("running", "completed", "failed")
StepOutcome = Literal["ran", "cache_hit"]

#: Longest key (param, metric, tag, artifact name) accepted; MLflow's limit too.
KEY_MAX_LENGTH: Final = 250
#: Fewer hex characters than this would too often name several runs at once.
RUN_ID_MIN_PREFIX: Final = 6

_KEY = re.compile(r"^[A-Za-z0-9_.\-/ ]+$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def new_run_id(now: float | None = None) -> str:
    """A new run id: 32 lowercase hex characters in the UUIDv7 layout.

    The first 48 bits are the start time in milliseconds, so ids sort by start time; the
    remaining 74 bits (after the version and variant bits) are random, so ids made on
    different machines at the same moment do not collide.
    """
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 68  # 12 bits
    rand_b = rand & ((1 << 62) - 1)
    value = (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return f"{value:032x}"


def is_run_id(text: str) -> bool:
    """Whether `text` has the shape of a full run id."""
    return _RUN_ID.match(text) is not None


def check_key(kind: str, key: object) -> str:
    """`key` if it is a valid name for a `kind` (param, metric, tag, artifact), else ConfigError."""
    if not isinstance(key, str):
        raise ConfigError(
            f"{kind} key must be a string, got {type(key).__name__} {key!r}",
            problems=[(f"{kind} key", "must be a string")],
        )
    if not key or len(key) > KEY_MAX_LENGTH or _KEY.match(key) is None:
        rule = (
            f"must be 1 to {KEY_MAX_LENGTH} characters of letters, digits, "
            "'_', '-', '.', '/' and space"
        )
        shown = key if len(key) <= 60 else key[:57] + "..."
        raise ConfigError(
            f"{kind} key {shown!r} is invalid: it {rule}", problems=[(f"{kind} key", rule)]
        )
    return key


def metric_value(key: str, value: object) -> float:
    """`value` as a float if it is a finite real number (numpy scalars too, bool not)."""
    # bool is an int to Python, but logging True as a metric is almost always a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(
            f"metric {key!r}: value must be a finite real number, "
            f"got {type(value).__name__} {value!r}",
            problems=[(f"metric {key}", "must be a finite real number")],
        )
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(
            f"metric {key!r}: value must be a finite real number, got {number}",
            problems=[(f"metric {key}", "must be a finite real number")],
        )
    return number


def param_text(key: str, value: object, *, kind: str = "param") -> str:
    """A param (or tag) value as the text keel stores: strings as they are, scalars as JSON.

    Accepted: str, bool, None, integers and finite floats (numpy scalars too); anything
    else (lists, dicts, objects) is a `ConfigError`, because its text form would not be
    stable enough to compare a re-logged value against.
    """
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, numbers.Integral):
        return json.dumps(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isfinite(number):
            return json.dumps(number)
    raise ConfigError(
        f"{kind} {key!r}: value must be a string, finite number, bool or None, "
        f"got {type(value).__name__} {value!r}",
        problems=[(f"{kind} {key}", "must be a JSON scalar: string, finite number, bool or null")],
    )


@dataclass(frozen=True, slots=True)
class Param:
    """A training parameter. Immutable once logged: the same key cannot change value."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Tag:
    """A free-form label on a run; unlike a param, a later value replaces an earlier one."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Metric:
    """One point of a metric series: the value at `step`, logged at `timestamp` (UTC)."""

    key: str
    value: float
    step: int
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """A metric series in brief: its last value (highest step, then latest) and length."""

    key: str
    last: float
    step: int
    count: int


@dataclass(frozen=True, slots=True)
class RunArtifact:
    """An object a run stored under a name, e.g. `model` or `plots/roc.png`."""

    name: str
    digest: Digest
    size: int


@dataclass(frozen=True, slots=True)
class StepRecord:
    """What one pipeline step did in a run: ran (producing `output`) or hit the cache.

    `cache` false: the output is the run's alone and does not become the cache's entry for
    `cache_key` (a rebuild that registers nothing must not change what training reuses)."""

    run_id: str
    step: str
    cache_key: str
    outcome: StepOutcome
    output: Digest | None
    seconds: float
    cache: bool = True


@dataclass(frozen=True, slots=True)
class CachedStep:
    """A step output that later runs may reuse when their step has the same cache key."""

    cache_key: str
    step: str
    output: Digest
    run_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Run:
    """One execution of the pipeline (or of user training code), with its lineage.

    `host` and `pid` name the process that runs it, so a run whose process died without
    finishing can be recognised and marked failed. `heartbeat_at` is when that process
    last wrote to the run. Code and environment hashes are digests as text
    (`blake3:<hex>`); any of them is None when unknown (e.g. not in a git repository).
    """

    id: str
    status: RunStatus
    started_at: datetime
    user: str
    host: str
    pid: int
    heartbeat_at: datetime | None = None
    ended_at: datetime | None = None
    dataset: Digest | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_diff_hash: str | None = None
    feature_code_hash: str | None = None
    training_code_hash: str | None = None
    environment: str | None = None
    seed: int | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if not is_run_id(self.id):
            raise ValueError(f"run id must be 32 lowercase hex characters, got {self.id!r}")
        if self.status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, got {self.status!r}")
        for name in ("started_at", "ended_at", "heartbeat_at"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def duration(self, now: datetime | None = None) -> timedelta | None:
        """How long the run took, or has been running until `now`; None if unknown."""
        end = self.ended_at or now
        return None if end is None else end - self.started_at

    @property
    def lineage(self) -> dict[str, Any]:
        """Where the run came from, as a JSON-ready mapping."""
        return {
            "dataset": None if self.dataset is None else str(self.dataset),
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "git_diff_hash": self.git_diff_hash,
            "feature_code_hash": self.feature_code_hash,
            "training_code_hash": self.training_code_hash,
            "environment": self.environment,
            "seed": self.seed,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document (times ISO-8601 in UTC, duration in seconds)."""
        duration = self.duration()
        return {
            "id": self.id,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "duration_seconds": None if duration is None else duration.total_seconds(),
            "heartbeat_at": None if self.heartbeat_at is None else self.heartbeat_at.isoformat(),
            "user": self.user,
            "host": self.host,
            "pid": self.pid,
            "error": self.error,
            "lineage": self.lineage,
        }
