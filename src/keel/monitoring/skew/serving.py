"""The serving side: a window's logged requests, typed as serving typed them, and the
features the version's packaged code computes from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.domain.times import TIME_KINDS, NotATime, to_pandas
from keel.errors import ConfigError, DataError, KeelError, NotFound
from keel.models.loader import load_model
from keel.models.signature import InferenceContract

if TYPE_CHECKING:
    from keel.domain.model import ModelVersion
    from keel.models.package import LoadedModel
    from keel.workspace import Workspace

__all__ = ["request_frame"]


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
