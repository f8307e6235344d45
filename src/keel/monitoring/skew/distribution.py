"""Distribution skew: the serving features against the version's training features,
one drift test per feature."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Final

import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.errors import ConfigError, DataError, NotFound
from keel.monitoring.skew.serving import _Serving

if TYPE_CHECKING:
    from keel.domain.model import ModelVersion
    from keel.stats.drift import DriftResult
    from keel.workspace import Workspace

__all__: list[str] = []


#: Columns the features step adds to its output (see `keel.pipeline.train._build_features`).
_TARGET: Final = "__keel_target__"
_HOLDOUT: Final = "__keel_holdout__"
_TRAIN: Final = "__keel_train__"


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
