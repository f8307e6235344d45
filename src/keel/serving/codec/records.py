"""Plain JSON records (`/predict`) decoded, and a batch as the model's DataFrame."""

from __future__ import annotations

from typing import Any

from keel.domain.times import TIME_KINDS, to_pandas
from keel.models.signature import InferenceContract
from keel.serving.codec.problems import BadRequest, Batch, Problem
from keel.serving.codec.values import _check_values, _kind, _summary, _too_many

__all__ = ["decode_records", "to_frame"]


def decode_records(document: Any, contract: InferenceContract, *, max_rows: int) -> Batch:
    """Plain JSON: `{"records": [{...}, ...]}` (also `instances`, MLflow's `dataframe_records`,
    or a bare list of records)."""
    records: Any
    if isinstance(document, list):
        records = document
    elif isinstance(document, dict):
        keys = [k for k in ("records", "instances", "dataframe_records") if k in document]
        extra = [
            k for k in document if k not in {"records", "instances", "dataframe_records", "id"}
        ]
        if len(keys) != 1 or extra:
            raise BadRequest(
                400,
                'expected {"records": [{...}, ...]}',
                [
                    Problem(
                        extra[0] if extra else "records",
                        "exactly one of records, instances, dataframe_records",
                        "",
                    )
                ],
            )
        records = document[keys[0]]
    else:
        raise BadRequest(
            400,
            f"expected a JSON object, got {_kind(document)}",
            [Problem("body", "a JSON object", _kind(document))],
        )
    if not isinstance(records, list) or not records:
        raise BadRequest(
            400,
            "records must be a non-empty list",
            [Problem("records", "a non-empty list", _kind(records))],
        )
    if len(records) > max_rows:
        raise _too_many(len(records), max_rows)
    names = contract.input_names
    expected = set(names)
    problems: list[Problem] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(
                Problem("records", "an object per record", f"got {_kind(record)}", index)
            )
            continue
        for name in names:
            if name not in record:
                problems.append(Problem(name, "missing input", "the model needs it", index))
        for name in record:
            if name not in expected:
                problems.append(
                    Problem(str(name), "unknown input", "the model does not take it", index)
                )
        if len(problems) >= 50:
            break
    if problems:
        raise BadRequest(400, _summary(problems), problems)
    columns = {name: [record[name] for record in records] for name in names}
    problems = _check_values(contract, columns, len(records))
    if problems:
        raise BadRequest(400, _summary(problems), problems)
    client_id = document.get("id") if isinstance(document, dict) else None
    return Batch(columns, len(records), client_id if isinstance(client_id, str) else None)


def to_frame(batch: Batch, contract: InferenceContract) -> Any:
    """The validated columns as the pandas DataFrame the model's feature code expects."""
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    data: dict[str, Any] = {}
    for spec in contract.inputs:
        values = batch.columns[spec.name]
        if spec.type in TIME_KINDS:
            data[spec.name] = to_pandas(pa.array(values, pa.string()), spec.type)
        elif spec.type == "float" or (spec.type == "integer" and any(v is None for v in values)):
            data[spec.name] = np.array(
                [np.nan if v is None else v for v in values], dtype="float64"
            )
        elif spec.type == "integer":
            data[spec.name] = np.array(values, dtype="int64")
        elif spec.type == "boolean" and not any(v is None for v in values):
            data[spec.name] = np.array(values, dtype=bool)
        else:
            data[spec.name] = np.array(values, dtype=object)
    return pd.DataFrame(data, index=pd.RangeIndex(batch.rows))
