"""Training-serving skew: are the features a model gets in production the ones it was trained on?

Both views run the model version's *packaged* feature code (never the project's working tree),
so they measure what serving computed, not what the code looks like today:

- distribution skew (`distribution_skew`): the features of the window's logged requests against
  the training features (the features step output of the version's run, training rows only),
  one drift test per feature through `keel.stats.drift.compare_tables`;
- row-level skew (`row_skew`): each logged request that carries the entity key
  (keel.yaml `data.entity_key`) is matched with the offline raw row of the same key, in the
  version's training dataset or in a later version of the source (`source`: production rows
  arrive after training); features are computed on both sides and compared value by value.
  A broken online feature pipeline (a unit converted, a field not filled) shows as the share of
  rows whose feature disagrees, on exactly the features it affects.

The offline side is computed like training computes it (the dataset's rows as a DataFrame, label
dropped); the online side like serving does (the logged inputs, typed by the inference contract,
as `keel.serving.codec.to_frame` builds them). Features are computed once per side, as one batch:
keel's feature code maps each raw row to one feature row on its own.

    report = row_skew(project, "flights-delay", start=start, end=end)
    for feature in report.features:
        print(feature.feature, feature.mismatch_rate)
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.domain.times import TIME_KINDS, NotATime, table_to_pandas, to_pandas
from keel.errors import ConfigError, DataError, KeelError, NotFound
from keel.models.loader import load_model
from keel.models.signature import InferenceContract

if TYPE_CHECKING:
    from keel.domain.dataset import DatasetVersion
    from keel.domain.model import ModelVersion
    from keel.models.package import LoadedModel
    from keel.stats.drift import DriftResult
    from keel.workspace import Workspace

__all__ = [
    "EXAMPLES",
    "FeatureSkew",
    "RowSkewReport",
    "SkewExample",
    "SkewReport",
    "distribution_skew",
    "request_frame",
    "row_skew",
    "skew_report",
]

#: Mismatched rows shown per feature.
EXAMPLES: Final = 5
#: Columns the features step adds to its output (see `keel.pipeline.train._build_features`).
_TARGET: Final = "__keel_target__"
_HOLDOUT: Final = "__keel_holdout__"
_TRAIN: Final = "__keel_train__"
_LOGGED_ROW: Final = "__keel_logged_row__"
_OFFLINE_ROW: Final = "__keel_offline_row__"


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkewExample:
    """One logged request whose feature disagrees with its offline recomputation.

    `key` maps each entity-key column to the request's value; `online` is the feature as
    computed from the logged request, `offline` as computed from the offline raw row (JSON
    values: None for missing, times as ISO 8601). `prediction_id` is for `keel explain`.
    """

    prediction_id: str
    key: Mapping[str, Any]
    online: Any
    offline: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "prediction_id": self.prediction_id,
            "key": dict(self.key),
            "online": self.online,
            "offline": self.offline,
        }


@dataclass(frozen=True)
class FeatureSkew:
    """How often one feature differs between serving and its offline recomputation.

    `compared` rows were matched with an offline row; `mismatches` of them disagree (numbers:
    not within the report's tolerance, NaN matching NaN only; other values: not equal, missing
    matching missing only). `missing_online` counts mismatches where only the online value is
    missing (a field serving did not fill), `missing_offline` the reverse. `examples` are the
    first few mismatched requests, oldest first.
    """

    feature: str
    compared: int
    mismatches: int
    missing_online: int = 0
    missing_offline: int = 0
    examples: tuple[SkewExample, ...] = ()

    @property
    def mismatch_rate(self) -> float | None:
        """`mismatches / compared`; None when no row was compared."""
        return self.mismatches / self.compared if self.compared else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "compared": self.compared,
            "mismatches": self.mismatches,
            "mismatch_rate": self.mismatch_rate,
            "missing_online": self.missing_online,
            "missing_offline": self.missing_offline,
            "examples": [example.to_dict() for example in self.examples],
        }


@dataclass(frozen=True)
class RowSkewReport:
    """Row-level skew of one model version over a window of logged predictions.

    Of the `predictions` the version logged in `[start, end)` (the newest `limit` if one was
    given), `without_key` lack a value for some entity-key column, `without_match` have a key no
    row of dataset `source` has, `ambiguous` have a key several offline rows share (not
    compared), and the other `compared` rows were compared feature by feature. `source` is the
    dataset version id; `source_is_training` says whether it is the one the version was
    trained on. Numbers match when `|online - offline| <= tolerance * (1 + |offline|)`.
    """

    model: str
    version: int
    start: datetime
    end: datetime
    entity_key: tuple[str, ...]
    source: str
    source_is_training: bool
    tolerance: float
    predictions: int
    without_key: int
    without_match: int
    ambiguous: int
    compared: int
    features: tuple[FeatureSkew, ...]

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def max_mismatch_rate(self) -> float | None:
        """The highest mismatch rate of any feature; None when nothing was compared."""
        rates = [f.mismatch_rate for f in self.features if f.mismatch_rate is not None]
        return max(rates) if rates else None

    def above(self, max_mismatch: float) -> list[FeatureSkew]:
        """Features whose mismatch rate is above `max_mismatch` (a share, 0.01 = 1%)."""
        return [
            f
            for f in self.features
            if f.mismatch_rate is not None and f.mismatch_rate > max_mismatch
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "ref": self.ref,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "entity_key": list(self.entity_key),
            "source": {"dataset": self.source, "training": self.source_is_training},
            "tolerance": self.tolerance,
            "predictions": self.predictions,
            "without_key": self.without_key,
            "without_match": self.without_match,
            "ambiguous": self.ambiguous,
            "compared": self.compared,
            "max_mismatch_rate": self.max_mismatch_rate,
            "features": [feature.to_dict() for feature in self.features],
        }


@dataclass(frozen=True)
class SkewReport:
    """Both views of one window, computed from one read of the prediction log: what
    `keel skew` prints. `distribution` compares training features (reference) with serving
    features (current), one result per feature."""

    row: RowSkewReport
    distribution: tuple[DriftResult, ...]

    @property
    def drifted(self) -> list[str]:
        return [result.column for result in self.distribution if result.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.row.model,
            "version": self.row.version,
            "start": self.row.start.isoformat(),
            "end": self.row.end.isoformat(),
            "distribution": [result.to_dict() for result in self.distribution],
            "drifted": self.drifted,
            "rows": self.row.to_dict(),
        }


# --- public operations ------------------------------------------------------------------------


def row_skew(
    project: Workspace,
    model: str,
    *,
    start: datetime,
    end: datetime,
    version: int | None = None,
    entity_key: Sequence[str] | None = None,
    source: str | None = None,
    tolerance: float = 1e-9,
    limit: int | None = None,
) -> RowSkewReport:
    """Row-level skew of `model` over the predictions logged in `[start, end)`.

    `version` defaults to the version that answered most of the window's requests; `entity_key`
    to keel.yaml's `data.entity_key`; `source` (a dataset version: `latest`, an id or a
    prefix) to the dataset the version was trained on. `limit` keeps the newest predictions.
    ConfigError without an entity key, NotFound for an unknown model or an empty window.
    """
    key = _entity_key(project, entity_key)
    _check_options(tolerance, limit)
    serving = _Serving.read(project, model, start, end, version, limit)
    return _row_skew(project, serving, key, source, tolerance)


def distribution_skew(
    project: Workspace,
    model: str,
    *,
    start: datetime,
    end: datetime,
    version: int | None = None,
    test: str | None = None,
    threshold: float | None = None,
) -> list[DriftResult]:
    """Serving features of the window's logged requests against the version's training
    features (its run's features step output, holdout rows left out), one drift result per
    feature. `test` and `threshold` default to keel.yaml's `monitoring.drift`."""
    test, threshold = _drift_options(project, test, threshold)
    serving = _Serving.read(project, model, start, end, version, None)
    return _distribution_skew(project, serving, test, threshold)


def skew_report(
    project: Workspace,
    model: str,
    *,
    start: datetime,
    end: datetime,
    version: int | None = None,
    entity_key: Sequence[str] | None = None,
    source: str | None = None,
    tolerance: float = 1e-9,
    test: str | None = None,
    threshold: float | None = None,
    limit: int | None = None,
) -> SkewReport:
    """`row_skew` and `distribution_skew` of one window, reading the log and computing the
    serving features once. Arguments as theirs; `limit` applies to both."""
    key = _entity_key(project, entity_key)
    _check_options(tolerance, limit)
    test, threshold = _drift_options(project, test, threshold)
    serving = _Serving.read(project, model, start, end, version, limit)
    rows = _row_skew(project, serving, key, source, tolerance)
    distribution = _distribution_skew(project, serving, test, threshold)
    return SkewReport(row=rows, distribution=tuple(distribution))


# --- the serving side -------------------------------------------------------------------------


@dataclass
class _Serving:
    """One version's logged predictions in a window, and its packaged feature code."""

    model: str
    start: datetime
    end: datetime
    version: ModelVersion
    loaded: LoadedModel
    contract: InferenceContract
    window: pa.Table  # this version's rows, oldest first
    _features: pd.DataFrame | None = None

    @classmethod
    def read(
        cls,
        project: Workspace,
        model: str,
        start: datetime,
        end: datetime,
        version: int | None,
        limit: int | None,
    ) -> _Serving:
        from keel.predlog.read import read_window

        if start.tzinfo is None or end.tzinfo is None:
            raise ConfigError(
                "start and end must be timezone-aware",
                problems=[("start", "must carry a time zone"), ("end", "must carry a time zone")],
            )
        if start >= end:
            raise ConfigError(
                f"the window is empty: start {start.isoformat()} is not before end "
                f"{end.isoformat()}",
                problems=[("start", "must be before end")],
            )
        project.metadata.models.versions(model)  # NotFound naming the registered models
        window = read_window(project, model, start, end)
        span = f"between {start.isoformat()} and {end.isoformat()}"
        if window.num_rows == 0:
            raise NotFound(
                f"model {model}: no predictions were logged {span}",
                hint="widen the window (--since, --start/--end); `keel predictions stats` "
                "shows what the prediction log holds",
            )
        counts = _version_counts(window)
        if version is None:
            # The version that answered most requests (a shadow scores them all, answers none);
            # the newest of a tie.
            answered = _version_counts(window.filter(pc.not_equal(window["slot"], "shadow")))
            choice = answered or counts
            version = max(choice, key=lambda number: (choice[number], number))
        elif version not in counts:
            logged = ", ".join(f"v{n} ({c:,})" for n, c in sorted(counts.items()))
            raise NotFound(
                f"{model}@{version} logged no predictions {span} (versions that did: {logged})",
                hint="pass --version with one of them, or widen the window",
            )
        window = window.filter(pc.equal(window["version"], version))
        if limit is not None and window.num_rows > limit:
            window = window.slice(window.num_rows - limit)
        registered = project.metadata.models.get(model, version)
        if not registered.inference_contract:
            raise ConfigError(
                f"{registered.ref} has no inference contract, so its logged inputs cannot be "
                "typed as serving typed them",
                hint="register versions through `keel train`, which records one",
            )
        return cls(
            model=model,
            start=start,
            end=end,
            version=registered,
            loaded=load_model(project, registered),
            contract=InferenceContract.from_dict(registered.inference_contract),
            window=window,
        )

    @property
    def features(self) -> pd.DataFrame:
        """The packaged feature code applied to every logged request of the window."""
        if self._features is None:
            frame = request_frame(self.window, self.contract)
            self._features = _compute_features(self.loaded, frame, f"{self.version.ref} (online)")
        return self._features


def _version_counts(window: pa.Table) -> dict[int, int]:
    grouped = window.group_by("version").aggregate([("id", "count")])
    return dict(zip(grouped["version"].to_pylist(), grouped["id_count"].to_pylist(), strict=True))


def request_frame(window: pa.Table, contract: InferenceContract) -> pd.DataFrame:
    """The logged inputs as the DataFrame serving handed the feature code: the dtypes of
    `keel.serving.codec.to_frame`, built column by column."""
    data: dict[str, Any] = {}
    rows = window.num_rows
    for spec in contract.inputs:
        name = f"inputs.{spec.name}"
        column = window[name] if name in window.column_names else pa.nulls(rows)
        nulls = column.null_count > 0
        if spec.type in TIME_KINDS:
            try:
                data[spec.name] = to_pandas(column, spec.type)
            except NotATime as exc:
                raise DataError(f"the logged input column {spec.name!r} {exc}") from None
        elif spec.type == "float" or (spec.type == "integer" and nulls):
            data[spec.name] = _cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        elif spec.type == "integer":
            data[spec.name] = _cast(column, pa.int64()).to_numpy()
        elif spec.type == "boolean" and not nulls:
            data[spec.name] = _cast(column, pa.bool_()).to_numpy(zero_copy_only=False)
        else:
            values = column.to_numpy(zero_copy_only=False)
            data[spec.name] = np.asarray(values, dtype=object)
    return pd.DataFrame(data, index=pd.RangeIndex(rows))


def _cast(column: pa.ChunkedArray, arrow_type: pa.DataType) -> pa.ChunkedArray:
    """A logged column in the type its contract gives it. The log keeps a value its type could
    not hold as text; serving refused such requests, so this only fails on a damaged log."""
    if column.type == arrow_type:
        return column
    try:
        return pc.cast(column, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(
            f"a logged input column of type {column.type} cannot be read as {arrow_type}: {exc}"
        ) from None


def _compute_features(loaded: LoadedModel, raw: pd.DataFrame, what: str) -> pd.DataFrame:
    try:
        built = loaded.features(raw)
    except KeelError:
        raise
    except Exception as exc:  # user code: name what failed rather than crash keel
        raise DataError(
            f"the feature code of {what} failed on {len(raw):,} raw rows: "
            f"{type(exc).__name__}: {exc}",
            hint="the rows lack what the packaged feature code reads; check --source",
        ) from exc
    frame = built if isinstance(built, pd.DataFrame) else pd.DataFrame(np.asarray(built))
    if len(frame) != len(raw):
        raise DataError(
            f"the feature code of {what} returned {len(frame):,} rows for {len(raw):,} raw "
            "rows; it must map each raw row to one feature row"
        )
    frame = frame.reset_index(drop=True)
    frame.columns = [str(name) for name in frame.columns]
    return frame


# --- row-level skew ---------------------------------------------------------------------------


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


# --- distribution skew ------------------------------------------------------------------------


def _training_features(project: Workspace, version: ModelVersion) -> pa.Table:
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    run = project.metadata.runs.get(version.run_id)
    step = next((s for s in project.metadata.runs.steps(run.id) if s.step == "features"), None)
    if step is None or step.output is None:
        raise NotFound(
            f"run {run.id} of {version.ref} recorded no features step: there are no training "
            "features to compare serving with",
            hint="register versions through `keel train`, which records its features",
        )
    table = pq.read_table(io.BytesIO(project.artifacts.read_bytes(step.output)))
    if _TRAIN in table.column_names:
        table = table.filter(table[_TRAIN])
    elif _HOLDOUT in table.column_names:
        table = table.filter(pc.invert(table[_HOLDOUT]))
    marks = (_TARGET, _HOLDOUT, _TRAIN)
    return table.drop_columns([c for c in marks if c in table.column_names])


def _drift_options(
    project: Workspace, test: str | None, threshold: float | None
) -> tuple[str | None, float | None]:
    """The drift test and threshold: the given ones, else keel.yaml's `monitoring.drift`."""
    from keel.stats.drift import TESTS

    drift = project.spec.monitoring.drift
    if test is None:
        if threshold is not None:
            raise ConfigError(
                "a drift threshold needs a test: the default tests mix p-values and distances",
                problems=[("test", "is required with a threshold")],
            )
        if drift.test != "auto":
            test, threshold = drift.test, drift.threshold
        elif drift.threshold is not None:
            raise ConfigError(
                "monitoring.drift.threshold needs monitoring.drift.test: the default tests "
                "mix p-values and distances",
                problems=[("monitoring.drift.threshold", "needs monitoring.drift.test")],
            )
    if test is not None and test not in TESTS:
        raise ConfigError(
            f"unknown drift test {test!r}; known: {', '.join(sorted(TESTS))}",
            problems=[("test", f"must be one of {', '.join(sorted(TESTS))}")],
        )
    return test, threshold


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """Features as an Arrow table; zoned times go through UTC (pyarrow's pandas conversion
    of zoned columns warns on pandas 3.1)."""
    zoned = [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]
    plain = frame.assign(**{c: frame[c].dt.tz_convert(None) for c in zoned})
    table = pa.Table.from_pandas(plain, preserve_index=False)
    for name in zoned:
        index = table.schema.get_field_index(name)
        moments = table[name].cast(pa.timestamp(table[name].type.unit, tz="UTC"))
        table = table.set_column(index, name, moments)
    return table


def _distribution_skew(
    project: Workspace, serving: _Serving, test: str | None, threshold: float | None
) -> list[DriftResult]:
    from keel.stats.drift import compare_tables

    reference = _training_features(project, serving.version)
    current = _arrow(serving.features)
    columns = [name for name in current.column_names if name in reference.column_names]
    try:
        return compare_tables(
            reference.select(columns),
            current.select(columns),
            test=test,
            threshold=threshold,
            columns=columns,
        )
    except ValueError as exc:  # a feature of one kind in training and another in serving
        raise DataError(
            f"the serving features of {serving.version.ref} cannot be compared with its "
            f"training features: {exc}"
        ) from None
