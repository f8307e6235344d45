"""Feedback checked before anything is written: columns, ids, labels and times."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.domain.times import NotATime, as_utc, is_temporal, parse, to_utc
from keel.errors import ConfigError
from keel.monitoring.feedback.problems import SHOWN, FeedbackProblem, _problem
from keel.predlog.ids import is_prediction_id, normalise_prediction_id
from keel.spec import FeedbackSpec

if TYPE_CHECKING:
    pass

__all__ = ["check_feedback"]


_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")
_ID_RULE: Final = "must be a prediction id: 32 lowercase hex characters, as keel returns them"
_LABEL_RULE: Final = "must be a finite number, a string or a boolean"


def check_feedback(
    table: pa.Table, spec: FeedbackSpec, entity_key: Sequence[str] = ()
) -> tuple[pa.Table, list[FeedbackProblem]]:
    """Check every row; returns the rows normalised and every problem found.

    The normalised table has `row` (the row's 0-based index), `label`, and for id joins
    `prediction_id`; for entity joins the key columns and `time` (UTC). Other columns of
    the input are ignored.
    """
    problems: list[FeedbackProblem] = []
    columns: dict[str, pa.ChunkedArray] = {
        "row": pa.chunked_array([pa.array(range(table.num_rows), pa.int64())])
    }
    label = _column(table, spec.label_column, problems)
    if label is not None:
        label = _check_label(spec.label_column, label, problems)
        if label is not None:
            columns["label"] = label
    if spec.join == "id":
        ids = _column(table, spec.id_column, problems)
        if ids is not None:
            ids = _check_ids(spec.id_column, ids, problems)
            if ids is not None:
                columns["prediction_id"] = ids
    else:
        if not entity_key:
            raise ConfigError(
                "monitoring.feedback.join is 'entity' but data.entity_key names no column",
                problems=[
                    ("data.entity_key", "required when monitoring.feedback.join is 'entity'")
                ],
            )
        for key in entity_key:
            values = _column(table, key, problems)
            if values is not None:
                _add(problems, _problem(key, "must not be null", values.is_null()))
                columns[key] = values
        assert spec.time_column is not None  # FeedbackSpec requires it for entity joins
        times = _column(table, spec.time_column, problems)
        if times is not None:
            utc = _utc_times(spec.time_column, times, problems)
            if utc is not None:
                columns["time"] = utc
    if problems:
        return pa.table({}), problems
    return pa.table(columns), problems


def _add(problems: list[FeedbackProblem], problem: FeedbackProblem | None) -> None:
    if problem is not None:
        problems.append(problem)


def _column(table: pa.Table, name: str, problems: list[FeedbackProblem]) -> pa.ChunkedArray | None:
    if name not in table.column_names:
        present = ", ".join(table.column_names) or "none"
        problems.append(FeedbackProblem(name, f"missing column (the columns are: {present})"))
        return None
    column = table[name]
    if pa.types.is_dictionary(column.type):
        column = pa.chunked_array(
            [chunk.dictionary_decode() for chunk in column.chunks], column.type.value_type
        )
    if pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    return column


def _check_ids(
    name: str, ids: pa.ChunkedArray, problems: list[FeedbackProblem]
) -> pa.ChunkedArray | None:
    if pa.types.is_null(ids.type):
        problems.append(
            FeedbackProblem(name, "must not be null", len(ids), tuple(range(min(len(ids), SHOWN))))
        )
        return None
    if not pa.types.is_string(ids.type):
        problems.append(FeedbackProblem(name, f"{_ID_RULE}; the column holds {ids.type}"))
        return None
    found = len(problems)
    _add(problems, _problem(name, "must not be null", ids.is_null()))
    # Ids as people paste them (upper case, the dashed UUID form, spaces) are the ids keel
    # stores, as `keel explain` takes them.
    given = ids.to_pylist()
    normalised = [None if v is None else normalise_prediction_id(v) or v for v in given]
    ids = pa.chunked_array([pa.array(normalised, pa.string())])
    malformed = pa.array([v is not None and not is_prediction_id(v) for v in normalised])
    _add(problems, _problem(name, _ID_RULE, malformed))
    if len(problems) == found:
        _add(
            problems,
            _problem(name, "appears more than once: one label per prediction", _duplicates(ids)),
        )
    return ids if len(problems) == found else None


def _duplicates(values: pa.ChunkedArray) -> pa.Array:
    """A mask of the rows whose value an earlier row already had."""
    table = pa.table({"value": values, "row": pa.array(range(len(values)), pa.int64())})
    first = table.group_by("value").aggregate([("row", "min")])
    keep = pc.is_in(table["row"], value_set=first["row_min"])
    return pc.invert(keep)


def _check_label(
    name: str, label: pa.ChunkedArray, problems: list[FeedbackProblem]
) -> pa.ChunkedArray | None:
    kind = label.type
    if pa.types.is_decimal(kind) or pa.types.is_floating(kind):
        label = pc.cast(label, pa.float64())
    elif pa.types.is_integer(kind):
        label = pc.cast(label, pa.int64())
    elif pa.types.is_null(kind):
        problems.append(
            FeedbackProblem(
                name, "must not be null", len(label), tuple(range(min(len(label), SHOWN)))
            )
        )
        return None
    elif not (pa.types.is_boolean(kind) or pa.types.is_string(kind)):
        problems.append(FeedbackProblem(name, f"{_LABEL_RULE}; the column holds {kind}"))
        return None
    found = len(problems)
    _add(problems, _problem(name, "must not be null", label.is_null()))
    if pa.types.is_floating(label.type):
        _add(problems, _problem(name, "must be a finite number", pc.invert(pc.is_finite(label))))
    if pa.types.is_string(label.type):
        _add(problems, _problem(name, "must not be empty", pc.equal(pc.utf8_length(label), 0)))
    return label if len(problems) == found else None


def _utc_times(
    name: str, column: pa.ChunkedArray, problems: list[FeedbackProblem]
) -> pa.ChunkedArray | None:
    """The column as UTC times: timestamps (naive ones are UTC), dates, or ISO 8601 text."""
    kind = column.type
    if is_temporal(kind):
        times: pa.ChunkedArray = to_utc(column)
        _add(problems, _problem(name, "must not be null", times.is_null()))
        return times
    if not pa.types.is_string(kind):
        problems.append(
            FeedbackProblem(name, f"must be a time (ISO 8601); the column holds {kind}")
        )
        return None
    parsed: list[datetime | None] = []
    bad: list[bool] = []
    for text in column.to_pylist():
        moment = _parse_time(text)
        parsed.append(moment)
        bad.append(text is not None and moment is None)
    _add(problems, _problem(name, "must not be null", column.is_null()))
    _add(
        problems,
        _problem(name, "must be a time in ISO 8601, e.g. 2024-05-01T12:00:00Z", pa.array(bad)),
    )
    return pa.chunked_array([pa.array(parsed, _TIMESTAMP)])


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return as_utc(parse(text, "timestamp"))
    except NotATime:
        return None
