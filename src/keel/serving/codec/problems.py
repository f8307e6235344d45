"""What a refused request carries: each problem's field, rule and detail, and the status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BadRequest", "Batch", "Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request: which field, which rule, and what was seen.

    Its document is written by hand, not with keel.serial: every refused request writes
    them, and a dict literal is several times as fast (benchmarks/serialisation.py)."""

    field: str
    rule: str
    detail: str
    record: int | None = None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"field": self.field, "rule": self.rule, "detail": self.detail}
        if self.record is not None:
            document["record"] = self.record
        return document


class BadRequest(Exception):
    """A request keel refuses, with the HTTP status and every problem found."""

    def __init__(
        self,
        status: int,
        message: str,
        problems: Sequence[Problem] = (),
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = list(problems)
        #: More keys of the error document (the model and exception of a 422).
        self.details = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.message,
            "problems": [p.to_dict() for p in self.problems],
            **self.details,
        }


@dataclass(frozen=True)
class Batch:
    """A decoded, validated request: columns by input name, and how many rows."""

    columns: dict[str, list[Any]]
    rows: int
    client_id: str | None = None
    outputs: tuple[str, ...] | None = None  # the outputs asked for (OIP); None: all
    parameters: Mapping[str, Any] = field(default_factory=dict)
