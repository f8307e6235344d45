"""Recording feedback, all or nothing: from a file (`keel feedback`) or an HTTP request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

from keel.errors import ConfigError, ContractViolation, DataError
from keel.metadata.base import FeedbackReceipt
from keel.monitoring.feedback.checks import check_feedback
from keel.monitoring.feedback.joining import Resolution, resolve
from keel.monitoring.feedback.parsing import records_table
from keel.monitoring.feedback.problems import SHOWN, FeedbackProblem, _listed
from keel.monitoring.feedback.windows import align
from keel.spec import FeedbackSpec

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["FeedbackResult", "ingest", "receive"]


@dataclass(frozen=True)
class FeedbackResult:
    """What one ingestion did: the labels recorded, the rows skipped, the windows touched."""

    source: str | None
    join: Literal["id", "entity"]
    rows: int  # rows given
    receipt: FeedbackReceipt
    unknown: int  # rows skipped: no logged prediction (only with allow_unknown)
    unknown_ids: list[str]  # the first few, for id joins
    unknown_rows: list[int]  # the first few, 0-based
    models: dict[str, tuple[datetime, datetime]]  # the predictions labelled: oldest, newest
    times: dict[str, list[datetime]] = field(repr=False)  # of the predictions labelled

    def windows_of(self, window: timedelta) -> dict[str, list[datetime]]:
        """The starts of the windows (`align`) holding a labelled prediction, per model."""
        return {
            model: sorted({align(moment, window) for moment in moments})
            for model, moments in self.times.items()
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "join": self.join,
            "rows": self.rows,
            "recorded": self.receipt.rows,
            "new": self.receipt.new,
            "replaced": self.receipt.replaced,
            "changed": self.receipt.changed,
            "unknown": self.unknown,
            "unknown_ids": self.unknown_ids,
            "unknown_rows": [r + 1 for r in self.unknown_rows],
            "received_at": self.receipt.received_at.isoformat(),
            "received_by": self.receipt.received_by,
            "audit_events": list(self.receipt.events),
            "models": {
                name: {
                    "labels": len(self.times.get(name, [])),
                    "first_at": first.isoformat(),
                    "last_at": last.isoformat(),
                }
                for name, (first, last) in sorted(self.models.items())
            },
        }


def ingest(
    project: Workspace,
    table: pa.Table,
    *,
    model: str | None = None,
    allow_unknown: bool = False,
    actor: str | None = None,
    source: str | None = None,
) -> FeedbackResult:
    """Check, join and record labels, all or nothing.

    `DataError` for malformed rows (missing column, null or non-finite label, malformed or
    repeated id, two rows for one prediction); `ContractViolation` for rows that name no
    logged prediction (or, by entity, match none), unless `allow_unknown` skips them.
    Either way nothing is recorded. `source` (a file name) prefixes messages.
    """
    spec = project.spec.monitoring.feedback
    where = f"{source}: " if source else ""
    keys = project.spec.data.entity_key if project.spec.data is not None else []
    checked, problems = check_feedback(table, spec, keys)
    if not problems:
        resolution = resolve(project, checked, model=model)
        problems = resolution.problems
    if problems:
        raise DataError(
            f"{where}{len(problems)} problem(s) (row 1 is the first data row): {_listed(problems)}",
            path=source,
            hint="fix the rows named; nothing was recorded",
        )
    if resolution.unknown and not allow_unknown:
        raise ContractViolation(
            f"{where}{_unknown_message(resolution, spec, model, table.num_rows)}; "
            "nothing was recorded",
            hint=(
                "check that they are ids keel returned (`keel explain ID` shows one), or "
                "pass --allow-unknown to record the other rows and skip these"
                if spec.join == "id"
                else "check data.entity_key, monitoring.feedback.time_column and max_lag, or "
                "pass --allow-unknown to record the other rows and skip these"
            ),
        )
    receipt = project.metadata.feedback.record(
        resolution.rows, actor=actor or project.settings.user, via=source
    )
    return _result(source, spec, table.num_rows, receipt, resolution)


def _unknown_message(
    resolution: Resolution, spec: FeedbackSpec, model: str | None, total: int
) -> str:
    count = len(resolution.unknown)
    rows = ", ".join(str(r + 1) for r in resolution.unknown[:SHOWN])
    more = f" and {count - SHOWN:,} more" if count > SHOWN else ""
    if spec.join == "id":
        ids = ", ".join(resolution.unknown_ids[:SHOWN])
        of = f"of {model}" if model else "in the prediction log"
        return (
            f"{count:,} of {total:,} row(s) name no logged prediction {of} "
            f"({spec.id_column} {ids}{more}; row {rows})"
        )
    return (
        f"{count:,} of {total:,} row(s) match no prediction made within "
        f"{_duration(spec.max_lag)} before their {spec.time_column} (row {rows}{more})"
    )


def _duration(delta: timedelta) -> str:
    from keel.domain.duration import format_duration

    return format_duration(delta)


def _result(
    source: str | None,
    spec: FeedbackSpec,
    rows: int,
    receipt: FeedbackReceipt,
    resolution: Resolution,
) -> FeedbackResult:
    times: dict[str, list[datetime]] = {}
    for row in resolution.rows:
        times.setdefault(row.model, []).append(row.at)
    return FeedbackResult(
        source=source,
        join=spec.join,
        rows=rows,
        receipt=receipt,
        unknown=len(resolution.unknown),
        unknown_ids=resolution.unknown_ids[:SHOWN],
        unknown_rows=resolution.unknown[:SHOWN],
        models={name: (min(moments), max(moments)) for name, moments in times.items()},
        times=times,
    )


def receive(
    project: Workspace,
    document: object,
    *,
    actor: str,
    max_rows: int | None = None,
    via: str | None = None,
) -> FeedbackResult:
    """Labels sent over HTTP: `{"feedback": [{...}, ...], "model"?: str, "allow_unknown"?:
    bool}`, each record a row of a feedback file (`prediction_id` and `label` by default).
    `actor` is the caller the route authenticated; `via` (the route) goes to the audit log.

    Every problem is a `ConfigError` whose `problems` name the field as `feedback[3].label`
    (0-based, like the list), unknown ids included; nothing is recorded then.
    """
    limit = max_rows if max_rows is not None else project.spec.serving.max_rows
    body = _body(document, limit)
    records: list[object] = body["feedback"]
    model: str | None = body.get("model")
    allow_unknown: bool = body.get("allow_unknown", False)
    spec = project.spec.monitoring.feedback
    keys = project.spec.data.entity_key if project.spec.data is not None else []
    table, problems = records_table(records)
    if not problems:
        checked, problems = check_feedback(table, spec, keys)
    if not problems:
        resolution = resolve(project, checked, model=model)
        problems = resolution.problems
        if not problems and resolution.unknown and not allow_unknown:
            problems = [
                FeedbackProblem(
                    spec.id_column if spec.join == "id" else ", ".join(keys),
                    "names no logged prediction"
                    if spec.join == "id"
                    else "matches no logged prediction within max_lag before its time",
                    len(resolution.unknown),
                    tuple(resolution.unknown[:SHOWN]),
                )
            ]
    if problems:
        raise ConfigError(
            f"the feedback is invalid, nothing was recorded: {_listed(problems)} "
            "(rows count from 1)",
            problems=[pair for problem in problems for pair in problem.fields()],
        )
    receipt = project.metadata.feedback.record(resolution.rows, actor=actor, via=via)
    return _result(None, spec, len(records), receipt, resolution)


def _body(document: object, max_rows: int) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ConfigError(
            'the request body must be a JSON object {"feedback": [...]}',
            problems=[("body", "must be a JSON object")],
        )
    problems = [
        (str(name), "unknown field; expected feedback, model, allow_unknown")
        for name in document
        if name not in ("feedback", "model", "allow_unknown")
    ]
    records = document.get("feedback")
    if not isinstance(records, list) or not records:
        problems.append(("feedback", "is required: a non-empty list of records"))
    elif len(records) > max_rows:
        problems.append(("feedback", f"at most {max_rows:,} records (serving.max_rows)"))
    if not isinstance(document.get("model", ""), str):
        problems.append(("model", "must be a string"))
    if not isinstance(document.get("allow_unknown", False), bool):
        problems.append(("allow_unknown", "must be true or false"))
    if problems:
        raise ConfigError(
            f"the request body is invalid: {', '.join(name for name, _ in problems)}",
            problems=problems,
        )
    return document
