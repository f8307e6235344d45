"""Feedback as a table: read from CSV, Parquet or JSON lines, or built from JSON records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

from keel.errors import DataError
from keel.monitoring.feedback.problems import SHOWN, FeedbackProblem, _listed

if TYPE_CHECKING:
    pass

__all__ = ["read_feedback_file", "records_table"]


_CSV: Final = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst")
_PARQUET: Final = (".parquet", ".pq", ".parq")
_JSON_LINES: Final = (".jsonl", ".ndjson", ".json")


def read_feedback_file(path: Path, *, id_column: str = "prediction_id") -> pa.Table:
    """A feedback file as a table: CSV (optionally compressed), Parquet or JSON lines, by
    its name. `DataError` naming the file (and the line, for JSON lines) when it cannot be
    read; the rows themselves are checked by `check_feedback`."""
    from keel.data import read_table

    name = path.name.lower()
    if not path.is_file():
        raise DataError(f"{path}: no such file", path=path)
    if name.endswith(_PARQUET):
        return read_table(path, format="parquet")
    if name.endswith(_JSON_LINES):
        return _read_json_lines(path)
    if not name.endswith(_CSV):
        kinds = ", ".join(_CSV + _PARQUET + _JSON_LINES)
        raise DataError(
            f"{path}: cannot tell the format from the name: use one of {kinds}", path=path
        )
    table = read_table(path, format="csv")
    if id_column in table.column_names and not pa.types.is_string(table[id_column].type):
        # A column of ids that happen to be all digits reads as numbers: read it as text.
        import pyarrow.csv as pcsv  # type: ignore[import-untyped,unused-ignore]

        ids = pcsv.read_csv(
            path,
            convert_options=pcsv.ConvertOptions(
                column_types={id_column: pa.string()}, include_columns=[id_column]
            ),
        )[id_column]
        table = table.set_column(table.column_names.index(id_column), id_column, ids)
    return table


def _read_json_lines(path: Path) -> pa.Table:
    records: list[object] = []
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise DataError(
                        f"{path}: line {number}, column {exc.colno}: not valid JSON: {exc.msg}",
                        path=path,
                    ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}", path=path) from None
    table, problems = records_table(records)
    if problems:
        raise DataError(
            f"{path}: {len(problems)} problem(s) (row 1 is the first record): {_listed(problems)}",
            path=path,
            hint="nothing was recorded",
        )
    return table


def records_table(records: Sequence[object]) -> tuple[pa.Table, list[FeedbackProblem]]:
    """JSON records (objects of scalars) as a table, one typed column per field, and the
    problems found: a record that is not an object, a value that is not a scalar, a field
    mixing text, numbers and booleans."""
    problems: list[FeedbackProblem] = []
    names: dict[str, None] = {}
    not_objects: list[int] = []
    for index, record in enumerate(records):
        if isinstance(record, dict):
            names.update(dict.fromkeys(record))
        else:
            not_objects.append(index)
    if not_objects:
        problems.append(
            FeedbackProblem(
                "(record)", "must be an object", len(not_objects), tuple(not_objects[:SHOWN])
            )
        )
        return pa.table({}), problems
    objects: list[dict[str, Any]] = [r for r in records if isinstance(r, dict)]
    columns: dict[str, pa.Array] = {}
    for name in names:
        values = [record.get(name) for record in objects]
        column, problem = _json_column(name, values)
        if problem is not None:
            problems.append(problem)
        else:
            columns[name] = column
    return pa.table(columns) if not problems else pa.table({}), problems


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return "other"


def _json_column(name: str, values: list[Any]) -> tuple[pa.Array, FeedbackProblem | None]:
    kinds = [_kind(v) for v in values]
    nested = [i for i, k in enumerate(kinds) if k == "other"]
    if nested:
        return pa.nulls(0), FeedbackProblem(
            name, "must be a number, a string or a boolean", len(nested), tuple(nested[:SHOWN])
        )
    present = {k for k in kinds if k != "null"}
    if len(present) > 1:
        # Name the rows of the rarer kinds: the odd ones out.
        counts = {k: kinds.count(k) for k in present}
        usual = max(counts, key=lambda k: counts[k])
        odd = [i for i, k in enumerate(kinds) if k not in ("null", usual)]
        return pa.nulls(0), FeedbackProblem(
            name,
            f"mixes {', '.join(sorted(present))}: expected {usual} like most rows",
            len(odd),
            tuple(odd[:SHOWN]),
        )
    kind = next(iter(present), "null")
    if kind == "number" and all(isinstance(v, int) for v in values if v is not None):
        too_large = [i for i, v in enumerate(values) if v is not None and abs(v) >= 2**63]
        if too_large:
            return pa.nulls(0), FeedbackProblem(
                name, "must fit in 64 bits", len(too_large), tuple(too_large[:SHOWN])
            )
        return pa.array(values, pa.int64()), None
    arrow_type = {"boolean": pa.bool_(), "number": pa.float64(), "text": pa.string()}
    return pa.array(values, arrow_type.get(kind, pa.null())), None
