"""Row-level skew: each logged request matched by entity key with its offline row, features
compared value by value."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.domain.times import table_to_pandas
from keel.errors import ConfigError, DataError, NotFound
from keel.monitoring.skew.results import EXAMPLES, FeatureSkew, RowSkewReport, SkewExample
from keel.monitoring.skew.serving import _compute_features, _Serving

if TYPE_CHECKING:
    from keel.domain.dataset import DatasetVersion
    from keel.domain.model import ModelVersion
    from keel.workspace import Workspace

__all__: list[str] = []


_LOGGED_ROW: Final = "__keel_logged_row__"
_OFFLINE_ROW: Final = "__keel_offline_row__"


def _check_options(tolerance: float, limit: int | None) -> None:
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise ConfigError(
            f"tolerance must be a finite number >= 0, got {tolerance!r}",
            problems=[("tolerance", "must be a finite number >= 0")],
        )
    if limit is not None and limit < 1:
        raise ConfigError(
            f"limit must be at least 1, got {limit}", problems=[("limit", "must be >= 1")]
        )


def _entity_key(project: Workspace, given: Sequence[str] | None) -> tuple[str, ...]:
    if given is not None:
        key = tuple(given)
    else:
        key = () if project.spec.data is None else tuple(project.spec.data.entity_key)
    if not key:
        raise ConfigError(
            "data.entity_key: row-level skew matches each logged request with the offline row "
            "of the same entity, and keel.yaml names no entity key",
            problems=[("data.entity_key", "is required for row-level skew")],
            hint="set data.entity_key in keel.yaml to the columns that identify a raw row "
            "(e.g. [carrier, flight, time_hour] for the flights example)",
        )
    if len(set(key)) != len(key) or not all(isinstance(c, str) and c for c in key):
        raise ConfigError(
            f"data.entity_key: expected distinct column names, got {list(key)}",
            problems=[("data.entity_key", "must list distinct column names")],
        )
    return key


def _offline_source(
    project: Workspace, version: ModelVersion, source: str | None
) -> tuple[DatasetVersion, bool]:
    run = project.metadata.runs.get(version.run_id)
    if source is not None:
        dataset = project.metadata.datasets.resolve(source)
        return dataset, dataset.id == run.dataset
    if run.dataset is None:
        raise NotFound(
            f"run {run.id} of {version.ref} records no dataset: there are no offline rows to "
            "recompute features from",
            hint="pass --source DATASET to name a dataset version",
        )
    return project.metadata.datasets.get(run.dataset), True


def _row_skew(
    project: Workspace,
    serving: _Serving,
    key: tuple[str, ...],
    source: str | None,
    tolerance: float,
) -> RowSkewReport:
    from keel.data.snapshot import load_table

    ref = serving.version.ref
    inputs = set(serving.contract.input_names)
    outside = [column for column in key if column not in inputs]
    if outside:
        raise ConfigError(
            f"data.entity_key: {', '.join(outside)} {'is' if len(outside) == 1 else 'are'} "
            f"not an input of {ref}, so no logged request carries "
            f"{'it' if len(outside) == 1 else 'them'}",
            problems=[
                ("data.entity_key", f"{column!r} is not a model input") for column in outside
            ],
            hint=f"the inputs of {ref}: {', '.join(serving.contract.input_names)}",
        )
    dataset, is_training = _offline_source(project, serving.version, source)
    offline = load_table(project, dataset.id)
    absent = [column for column in key if column not in offline.column_names]
    if absent:
        raise ConfigError(
            f"data.entity_key: dataset {dataset.short} has no column {', '.join(absent)}",
            problems=[
                ("data.entity_key", f"{column!r} is not in the dataset") for column in absent
            ],
        )

    window = serving.window
    logged_keys = _logged_keys(window, key, offline.schema)
    keyed = logged_keys[logged_keys[list(key)].notna().all(axis=1)]
    offline_keys = pd.DataFrame(
        {column: _decoded(offline[column]).to_pandas() for column in key}, copy=False
    ).assign(**{_OFFLINE_ROW: np.arange(offline.num_rows)})
    shared = offline_keys.duplicated(list(key), keep=False).to_numpy()
    unique = offline_keys[~shared]
    matched = keyed.merge(unique, on=list(key), how="left", validate="many_to_one")
    found = matched[_OFFLINE_ROW].notna().to_numpy()
    ambiguous = 0
    if shared.any():
        several = offline_keys.loc[shared, list(key)].drop_duplicates()
        flags = keyed.merge(several, on=list(key), how="left", indicator=True)["_merge"]
        ambiguous = int((flags == "both").sum())
    pairs = matched[found]
    logged_rows = pairs[_LOGGED_ROW].to_numpy(dtype=np.int64)
    offline_rows = pairs[_OFFLINE_ROW].to_numpy(dtype=np.int64)

    features: tuple[FeatureSkew, ...] = ()
    if len(logged_rows):
        online = serving.features.iloc[logged_rows].reset_index(drop=True)
        raw = offline.take(pa.array(offline_rows))
        # The columns serving passes to the feature code: neither the target nor excluded ones.
        inputs_offline = [n for n in serving.contract.input_names if n in raw.column_names]
        raw = raw.select(inputs_offline)
        recomputed = _compute_features(serving.loaded, table_to_pandas(raw), f"{ref} (offline)")
        shown = logged_keys.iloc[logged_rows].reset_index(drop=True)
        ids = window["id"].take(pa.array(logged_rows)).to_pylist()
        features = tuple(
            _compare(name, online[name], _column(recomputed, name), tolerance, shown, key, ids)
            for name in online.columns
        )
    return RowSkewReport(
        model=serving.model,
        version=serving.version.version,
        start=serving.start,
        end=serving.end,
        entity_key=key,
        source=str(dataset.id),
        source_is_training=is_training,
        tolerance=tolerance,
        predictions=window.num_rows,
        without_key=window.num_rows - len(keyed),
        without_match=len(keyed) - int(found.sum()) - ambiguous,
        ambiguous=ambiguous,
        compared=len(logged_rows),
        features=features,
    )


def _logged_keys(window: pa.Table, key: Sequence[str], offline: pa.Schema) -> pd.DataFrame:
    """The key columns of the logged requests, in the offline column types (so the join
    compares like with like), with each request's row number."""
    data: dict[str, Any] = {}
    for column in key:
        name = f"inputs.{column}"
        values = window[name] if name in window.column_names else pa.nulls(window.num_rows)
        wanted = _decoded(pa.chunked_array([], offline.field(column).type)).type
        if values.type != wanted:
            try:
                values = pc.cast(values, wanted)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise DataError(
                    f"data.entity_key: the logged values of {column!r} ({values.type}) cannot "
                    f"be compared with the offline column ({wanted})"
                ) from None
        data[column] = values.to_pandas()
    frame = pd.DataFrame(data, copy=False)
    frame[_LOGGED_ROW] = np.arange(window.num_rows)
    return frame


def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded (categorical) column as its plain values, so keys join as values."""
    if pa.types.is_dictionary(column.type):
        return pc.cast(column, column.type.value_type)
    return column


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series([None] * len(frame), dtype=object)


def _compare(
    feature: str,
    online: pd.Series,
    offline: pd.Series,
    tolerance: float,
    keys: pd.DataFrame,
    key: tuple[str, ...],
    ids: list[str],
) -> FeatureSkew:
    online_missing = online.isna().to_numpy()
    offline_missing = offline.isna().to_numpy()
    if _numeric(online) and _numeric(offline):
        a = online.to_numpy(dtype="float64", na_value=np.nan)
        b = offline.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            close = np.isfinite(a) & np.isfinite(b) & (np.abs(a - b) <= tolerance * (1 + np.abs(b)))
        # An infinity matches the same infinity only (a == b); NaN matches NaN only.
        match = close | (a == b) | (online_missing & offline_missing)
    else:
        same = np.asarray(
            online.astype(object).to_numpy() == offline.astype(object).to_numpy(), dtype=bool
        )
        match = (same & ~online_missing & ~offline_missing) | (online_missing & offline_missing)
    wrong = np.flatnonzero(~match)
    examples = tuple(
        SkewExample(
            prediction_id=ids[row],
            key={column: _json(keys[column].iloc[row]) for column in key},
            online=_json(online.iloc[row]),
            offline=_json(offline.iloc[row]),
        )
        for row in wrong[:EXAMPLES]
    )
    return FeatureSkew(
        feature=feature,
        compared=len(online),
        mismatches=len(wrong),
        missing_online=int((online_missing & ~offline_missing).sum()),
        missing_offline=int((offline_missing & ~online_missing).sum()),
        examples=examples,
    )


def _numeric(series: pd.Series) -> bool:
    dtype = series.dtype
    return bool(pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def _json(value: Any) -> Any:
    """A feature or key value as a JSON value: None for any missing value."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, np.datetime64 | np.timedelta64):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
