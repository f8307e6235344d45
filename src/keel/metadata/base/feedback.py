"""Delayed ground truth (labels) and its join to logged predictions."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

__all__ = [
    "Feedback",
    "FeedbackReceipt",
    "FeedbackRow",
    "Label",
    "LabelRecord",
    "Labelled",
    "LoggedKey",
]


#: A label: a JSON scalar, never null (numbers finite).
Label = bool | int | float | str


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    """One label for one logged prediction. `at` is the prediction's time, as logged, so
    that windows of predictions and of labels are cut alike."""

    prediction_id: str
    model: str
    at: datetime
    label: Label


@dataclass(frozen=True, slots=True)
class FeedbackReceipt:
    """What one `Feedback.record` stored: `new` labels and `replaced` ones (of which
    `changed` differ from the label they replaced)."""

    rows: int
    new: int
    replaced: int
    changed: int
    received_at: datetime
    received_by: str
    events: tuple[int, ...] = ()  # the audit events recording the batch, one per model

    def to_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "new": self.new,
            "replaced": self.replaced,
            "changed": self.changed,
            "received_at": self.received_at.isoformat(),
            "received_by": self.received_by,
            "audit_events": list(self.events),
        }


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """One label a prediction has had: who recorded it and when, and, unless it is the
    current one, who replaced it and when. `revision` counts from 1, the first label."""

    prediction_id: str
    revision: int
    model: str
    label: Label
    received_at: datetime
    received_by: str
    superseded_at: datetime | None = None
    superseded_by: str | None = None

    @property
    def current(self) -> bool:
        return self.superseded_at is None

    def to_dict(self) -> dict[str, object]:
        return {
            "revision": self.revision,
            "label": self.label,
            "current": self.current,
            "received_at": self.received_at.isoformat(),
            "received_by": self.received_by,
            "superseded_at": None if self.superseded_at is None else self.superseded_at.isoformat(),
            "superseded_by": self.superseded_by,
        }


class Labelled(NamedTuple):
    """A stored label with its prediction's id and time."""

    prediction_id: str
    at: datetime
    label: Label


class LoggedKey(NamedTuple):
    """Which model version made a logged prediction, and when."""

    model: str
    version: int
    at: datetime


class Feedback(ABC):
    """Delayed ground truth: one current label per logged prediction.

    A later label for the same prediction becomes the current one; a replaced label that
    differs is kept in the prediction's history. Labels decide measured performance, so
    recording them is a write like any other: every batch appends a `labels.recorded`
    audit event per model, in the same transaction. `record` is all or nothing, and
    writers of feedback take turns, so the counts of new and replaced labels it returns
    are exact even when several write at once.
    """

    @abstractmethod
    def record(
        self, rows: Sequence[FeedbackRow], *, actor: str, via: str | None = None
    ) -> FeedbackReceipt:
        """Store the labels, their history and their audit events in one transaction.
        `via` says where they came from (a route, a file), for the audit log. `ConfigError`
        (nothing stored) for a prediction id given twice or a label that is null, not
        finite or not a scalar."""

    @abstractmethod
    def history(self, prediction_id: str) -> builtins.list[LabelRecord]:
        """Every label the prediction has had, oldest first, the current one last; empty
        when it has none."""

    @abstractmethod
    def window(self, model: str, start: datetime, end: datetime) -> builtins.list[Labelled]:
        """Labels of the model's predictions made in `[start, end)`, by time then id."""

    @abstractmethod
    def count(
        self, model: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> int:
        """How many of the model's predictions (made in `[start, end)`, if given) have a label."""

    @abstractmethod
    def newest(self, model: str) -> datetime | None:
        """When the model's most recent label arrived; None before the first."""

    @abstractmethod
    def span(self, model: str) -> tuple[datetime, datetime] | None:
        """The times of the oldest and newest labelled predictions of the model."""

    @abstractmethod
    def labels(self, prediction_ids: Iterable[str]) -> dict[str, Label]:
        """The stored label of each of these predictions that has one."""

    @abstractmethod
    def logged(self, prediction_ids: Iterable[str]) -> dict[str, LoggedKey]:
        """Model, version and time of each of these ids among the prediction log's recent
        rows (compacted ones are in its segments): what resolving labels by id needs."""
