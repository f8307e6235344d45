"""Batch scoring: `keel predict-batch INPUT OUTPUT --model MODEL@ALIAS`.

Every row of INPUT is checked against the version's inference contract before anything is
scored, with serving's rules (missing input, wrong type, null not allowed); a bad file is
refused naming the first bad rows of each field, and nothing is written or logged. Rows are
then scored in chunks through the same code path as `keel serve` (the JSON values a request
would carry, `to_frame`, the packaged feature code), each gets a prediction id, and each is
logged with slot `batch` through the prediction log. OUTPUT (Parquet or CSV, by its name)
holds `prediction_id`, the outputs and the input columns; it appears atomically, after the
log has made every row durable.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.domain.model import parse_model_ref
from keel.domain.times import (
    EXPECTED_FORMAT,
    TIME_KINDS,
    NotATime,
    TimeKind,
    is_temporal,
    parse,
    render,
    to_utc,
)
from keel.errors import ConfigError, DataError, KeelError
from keel.models.signature import InferenceContract, InputField, LogicalType
from keel.predlog.ids import new_prediction_id
from keel.predlog.log import PredictionBatch, PredictionLog
from keel.predlog.writer import open_prediction_log
from keel.serving.codec import Batch

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["CHUNK_ROWS", "BadRows", "BatchResult", "check_table", "predict_batch"]

#: Rows scored (and logged) at a time.
CHUNK_ROWS: Final = 10_000
#: Bad rows named per field in an error.
_SHOWN: Final = 5
_PARQUET: Final = (".parquet", ".pq", ".parq")
_CSV: Final = (".csv", ".csv.gz")
#: After a failure, how long the log may take to write what was already submitted (s).
_CLOSE_TIMEOUT: Final = 10.0


@dataclass(frozen=True)
class BadRows:
    """Rows of one field that break one rule: how many, and the first few (0-based)."""

    field: str
    rule: str
    detail: str
    count: int
    rows: tuple[int, ...] = ()

    def __str__(self) -> str:
        if not self.count:
            return f"{self.field}: {self.rule} ({self.detail})"
        shown = ", ".join(str(r + 1) for r in self.rows)
        more = f" and {self.count - len(self.rows):,} more" if self.count > len(self.rows) else ""
        return f"{self.field}: {self.rule} ({self.detail}) in row(s) {shown}{more}"


@dataclass(frozen=True)
class BatchResult:
    """What one batch scoring did."""

    input: Path
    output: Path
    model: str
    version: int
    requested: str  # the reference as given, e.g. flights-delay@production
    rows: int
    seconds: float
    logged: bool
    first_id: str | None = None
    last_id: str | None = None
    outputs: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "input": str(self.input),
            "output": str(self.output),
            "model": self.model,
            "version": self.version,
            "ref": f"{self.model}@{self.version}",
            "requested": self.requested,
            "rows": self.rows,
            "outputs": list(self.outputs),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds) if self.seconds else None,
            "logged": self.logged,
            "first_id": self.first_id,
            "last_id": self.last_id,
        }


def predict_batch(
    project: Workspace,
    input: Path,
    output: Path,
    ref: str,
    *,
    log: PredictionLog | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> BatchResult:
    """Score every row of `input` with the version `ref` names; write `output`; log each row.

    `log` defaults to the project's prediction log (keel.yaml `serving.log`), opened here
    and closed (flushed) before `output` appears. A log passed in is flushed, not closed.
    """
    from keel.data import read_table
    from keel.serving.slots import load_version

    started = time.perf_counter()
    _output_format(output)
    if not output.parent.is_dir():
        raise ConfigError(
            f"{output.parent}: no such folder for the output",
            problems=[("OUTPUT", "must be in an existing folder")],
        )
    parse_model_ref(ref)
    version = project.metadata.models.resolve(ref)
    if not version.inference_contract:
        raise ConfigError(
            f"{version.ref} has no inference contract, so rows cannot be checked against it",
            hint="register versions through `keel train`, which records one",
        )
    contract = InferenceContract.from_dict(version.inference_contract)
    original = read_table(input)
    table, problems = check_table(original, contract)
    if problems:
        listed = "; ".join(str(p) for p in problems[:_SHOWN])
        more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise DataError(
            f"{input}: {len(problems)} problem(s) with the inference contract of "
            f"{version.ref} (row 1 is the first data row): {listed}{more}",
            path=input,
            hint=f"`keel models show {version.model}` shows the inputs {version.ref} takes; "
            "nothing was scored or written",
        )
    names = ["prediction_id", *(f.name for f in contract.outputs)]
    taken = [name for name in names if name in table.column_names]
    if taken:
        raise DataError(
            f"{input}: column(s) {', '.join(taken)} would be overwritten by the output",
            path=input,
            hint="rename or drop them: OUTPUT holds prediction_id, the outputs and the inputs",
        )
    served = load_version(project, version)
    own_log = log is None
    prediction_log = open_prediction_log(project) if log is None else log
    ids: list[str] = []
    outputs: dict[str, list[Any]] = {f.name: [] for f in contract.outputs}
    closed = False
    try:
        for offset in range(0, table.num_rows, chunk_rows):
            chunk = table.slice(offset, chunk_rows)
            columns = {f.name: _json_values(chunk[f.name], f) for f in contract.inputs}
            at = datetime.now(UTC)
            scoring = time.perf_counter()
            scored = served.predict(Batch(columns, chunk.num_rows))
            latency_ms = (time.perf_counter() - scoring) * 1000
            chunk_ids = [new_prediction_id() for _ in range(chunk.num_rows)]
            prediction_log.submit(
                PredictionBatch(
                    ids=chunk_ids,
                    at=at,
                    model=version.model,
                    version=version.version,
                    slot="batch",
                    inputs=columns,
                    outputs=scored,
                    latency_ms=latency_ms,
                )
            )
            ids.extend(chunk_ids)
            for name, values in outputs.items():
                values.extend(scored.get(name, [None] * chunk.num_rows))
        result = _output_table(original, ids, outputs, contract)
        temporary = output.with_name(f".{output.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            _write(result, temporary, output)
            # Durable before OUTPUT exists: every id a user can read is in the log.
            if own_log:
                closed = True
                prediction_log.close()
            else:
                prediction_log.flush()
            temporary.replace(output)
            _sync_folder(output.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    finally:
        if own_log and not closed:
            # Scoring failed: what was submitted is still written if the store answers soon;
            # the error on its way out says what went wrong.
            with contextlib.suppress(KeelError):
                prediction_log.close(timeout=_CLOSE_TIMEOUT)
    return BatchResult(
        input=input,
        output=output,
        model=version.model,
        version=version.version,
        requested=ref,
        rows=table.num_rows,
        seconds=time.perf_counter() - started,
        logged=project.spec.serving.log.enabled or not own_log,
        first_id=ids[0] if ids else None,
        last_id=ids[-1] if ids else None,
        outputs=tuple(outputs),
    )


# --- checking -----------------------------------------------------------------------------


def check_table(table: pa.Table, contract: InferenceContract) -> tuple[pa.Table, list[BadRows]]:
    """Check every row against the contract's inputs, with serving's rules.

    Returns the table with lossless fixes applied (dictionary columns decoded, NaN read as
    null, whole numbers read as text where text is expected: a CSV reader's guesses) and
    every problem found, per field and rule, with the first bad rows.
    """
    problems: list[BadRows] = []
    for spec in contract.inputs:
        if spec.name not in table.column_names:
            problems.append(BadRows(spec.name, "missing input", "the model needs it", 0))
            continue
        index = table.column_names.index(spec.name)
        column = _normalised(table[spec.name], spec.type)
        table = table.set_column(index, spec.name, column)
        wrong = _wrong_type(column, spec.type)
        if wrong is not None:
            expected = EXPECTED_FORMAT[spec.type] if spec.type in TIME_KINDS else spec.type
            problems.append(_bad(spec.name, "wrong type", f"expected {expected}", wrong))
        if not spec.nullable and column.null_count:
            problems.append(
                _bad(spec.name, "null not allowed", "it had no nulls in training", column.is_null())
            )
    return table, problems


def _normalised(column: pa.ChunkedArray, logical: LogicalType) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        column = pa.chunked_array(
            [chunk.dictionary_decode() for chunk in column.chunks], column.type.value_type
        )
    if pa.types.is_floating(column.type):
        # NaN is how pandas and Parquet spell a missing number; requests would send null.
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
    if logical == "float" and pa.types.is_decimal(column.type):
        column = pc.cast(column, pa.float64())
    if logical == "string" and pa.types.is_integer(column.type):
        column = pc.cast(column, pa.string())  # a CSV reader's guess, losslessly undone
    if pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    return column


def _wrong_type(column: pa.ChunkedArray, logical: LogicalType) -> pa.ChunkedArray | None:
    """A mask of the rows whose value the field's type refuses, or None if none do."""
    kind = column.type
    present = pc.is_valid(column)
    bad: Any
    if logical == "integer":
        if pa.types.is_integer(kind):
            return None
        if pa.types.is_floating(kind):
            fraction = pc.invert(pc.equal(pc.floor(column), column))
            bad = pc.and_(present, pc.or_(pc.is_inf(column), fraction))
        else:
            bad = present
    elif logical == "float":
        if pa.types.is_integer(kind):
            return None
        bad = pc.and_(present, pc.is_inf(column)) if pa.types.is_floating(kind) else present
    elif logical == "boolean":
        if pa.types.is_boolean(kind):
            return None
        bad = present
    elif logical == "string":
        if pa.types.is_string(kind):
            return None
        bad = present
    else:  # timestamp or date
        if is_temporal(kind):
            return None
        if pa.types.is_string(kind):
            bad = pa.chunked_array(
                [
                    pa.array([not _is_time(v, logical) for v in chunk.to_pylist()])
                    for chunk in column.chunks
                ],
                pa.bool_(),
            )
            bad = pc.and_(present, bad)
        else:
            bad = present
    return bad if pc.any(bad).as_py() else None


def _is_time(value: str | None, kind: TimeKind) -> bool:
    if value is None:
        return True
    try:
        parse(value, kind)
    except NotATime:
        return False
    return True


def _bad(name: str, rule: str, detail: str, mask: pa.ChunkedArray) -> BadRows:
    rows = pc.indices_nonzero(pc.fill_null(mask, False))
    first = tuple(int(r) for r in rows.slice(0, _SHOWN).to_pylist())
    return BadRows(name, rule, detail, len(rows), first)


# --- scoring and writing ------------------------------------------------------------------


def _json_values(column: pa.ChunkedArray, spec: InputField) -> list[Any]:
    """A checked column as the JSON values a request would carry (times as ISO 8601, dates as
    YYYY-MM-DD)."""
    if spec.type in TIME_KINDS and not pa.types.is_string(column.type):
        return [render(v, spec.type) for v in to_utc(column).to_pylist()]
    values: list[Any] = column.to_pylist()
    if spec.type == "integer" and pa.types.is_floating(column.type):
        return [None if v is None else int(v) for v in values]
    if spec.type == "float":
        return [None if v is None or not math.isfinite(v) else v for v in values]
    return values


def _output_table(
    table: pa.Table, ids: list[str], outputs: dict[str, list[Any]], contract: InferenceContract
) -> pa.Table:
    types = {f.name: f.type for f in contract.outputs}
    arrow = {"integer": pa.int64(), "float": pa.float64(), "boolean": pa.bool_()}
    columns: dict[str, pa.Array] = {"prediction_id": pa.array(ids, pa.string())}
    for name, values in outputs.items():
        try:
            columns[name] = pa.array(values, arrow.get(types[name], pa.string()))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array(values)
    for name in table.column_names:
        columns[name] = table[name]
    return pa.table(columns)


def _output_format(output: Path) -> str:
    name = output.name.lower()
    if name.endswith(_PARQUET):
        return "parquet"
    if name.endswith(_CSV):
        return "csv"
    raise ConfigError(
        f"{output}: cannot tell the output format from the name: "
        f"use {', '.join(_PARQUET)} for Parquet or {', '.join(_CSV)} for CSV",
        problems=[("OUTPUT", f"must end with one of {', '.join(_PARQUET + _CSV)}")],
    )


def _write(table: pa.Table, temporary: Path, output: Path) -> None:
    import pyarrow.csv as pcsv  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    if _output_format(output) == "parquet":
        pq.write_table(table, temporary, compression="zstd")
    elif output.name.lower().endswith(".gz"):
        with pa.CompressedOutputStream(str(temporary), "gzip") as stream:
            pcsv.write_csv(table, stream)
    else:
        pcsv.write_csv(table, temporary)
    with temporary.open("rb+") as handle:
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be fsynced
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
