"""What a registered model version is evaluated on, read from its run's record: the rows (its
run's holdout, or a dataset version named instead) with their labels, and whether the data it
was trained on passed its contract. Model-level facts that release gates, reference profiles,
the contract test and the maturity scorecard all read, so they live below those services."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.domain.model import ModelVersion
from keel.domain.release import ContractEvidence
from keel.domain.times import table_to_pandas
from keel.errors import ConfigError, DataError, NotFound

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["EvaluationData", "contract_evidence", "load_evaluation_data"]

#: The columns the features step adds to its output (see keel.pipeline.train).
_HOLDOUT = "__keel_holdout__"


@dataclass(frozen=True)
class EvaluationData:
    """Raw input rows with their labels, and where they came from."""

    raw: Any  # pandas DataFrame of the raw input columns
    labels: Any  # numpy array
    description: dict[str, Any]


def load_evaluation_data(
    project: Workspace, version: ModelVersion, eval_data: str | None
) -> EvaluationData:
    """The rows to score both models on: `eval_data`'s, or the candidate run's holdout."""
    import numpy as np
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    from keel.data.snapshot import load_table

    spec = project.spec
    if spec.data is None or not spec.data.target:
        raise ConfigError(
            "data.target: the release gates score models on labelled rows, and keel.yaml "
            "names no target column",
            problems=[("data.target", "is required to score models")],
        )
    target = str(spec.data.target)
    if eval_data is not None:
        dataset = project.metadata.datasets.resolve(eval_data)
        table = load_table(project, dataset.id)
        selection = "all rows"
        mask = None
    else:
        run = project.metadata.runs.get(version.run_id)
        if run.dataset is None:
            raise NotFound(
                f"run {run.id} of {version.ref} records no dataset: there is no holdout to "
                "score on",
                hint="pass --eval-data DATASET to score both models on a dataset version",
            )
        dataset = project.metadata.datasets.get(run.dataset)
        features = next(
            (s for s in project.metadata.runs.steps(run.id) if s.step == "features"), None
        )
        if features is None or features.output is None:
            raise NotFound(
                f"run {run.id} of {version.ref} recorded no features step, so its holdout "
                "is unknown",
                hint="pass --eval-data DATASET to score both models on a dataset version",
            )
        table = load_table(project, dataset.id)
        marks = pq.read_table(
            io.BytesIO(project.artifacts.read_bytes(features.output)), columns=[_HOLDOUT]
        )
        mask = marks.column(_HOLDOUT).to_numpy(zero_copy_only=False).astype(bool)
        if len(mask) != table.num_rows:
            raise DataError(
                f"the holdout marks of run {run.id} cover {len(mask):,} rows, its dataset "
                f"has {table.num_rows:,}"
            )
        selection = f"holdout of run {run.id}"
    if target not in table.column_names:
        raise DataError(
            f"data.target: column {target!r} is not in dataset {dataset.short}",
            hint="choose a dataset version with labels",
        )
    frame = table_to_pandas(table)
    if mask is not None:
        frame = frame[mask].reset_index(drop=True)
    labels_series = frame.pop(target)
    keep = labels_series.notna().to_numpy()
    if not keep.all():
        frame = frame[keep].reset_index(drop=True)
        labels_series = labels_series[keep]
    if len(frame) == 0:
        raise DataError(f"no labelled rows to score on ({selection} of dataset {dataset.short})")
    return EvaluationData(
        raw=frame,
        labels=np.asarray(labels_series),
        description={
            "dataset": str(dataset.id),
            "selection": selection,
            "rows": len(frame),
            "target": target,
        },
    )


def contract_evidence(project: Workspace, version: ModelVersion) -> ContractEvidence:
    """Whether the data `version` was trained on passed its contract, from its run's record."""
    step = next(
        (s for s in project.metadata.runs.steps(version.run_id) if s.step == "contract"), None
    )
    if step is None or step.output is None:
        return ContractEvidence(
            checked=False,
            ok=None,
            detail=f"run {version.run_id} did not check the training data against a contract "
            "(keel.yaml has no data.contract)",
        )
    report = json.loads(project.artifacts.read_bytes(step.output))
    ok = bool(report.get("ok"))
    counts = report.get("summary") or {}
    rows = report.get("rows")
    summary = (
        f"{counts.get('checks', '?')} checks on "
        f"{f'{rows:,}' if isinstance(rows, int) else '?'} rows, "
        f"{counts.get('failed', '?')} failed, {counts.get('warnings', 0)} warnings"
    )
    how = ", cached" if step.outcome == "cache_hit" else ""
    return ContractEvidence(
        checked=True,
        ok=ok,
        detail=f"{'passed' if ok else 'failed'}: {summary}{how}",
        report=str(step.output),
    )
