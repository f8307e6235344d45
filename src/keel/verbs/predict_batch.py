"""`project.predict_batch()`: score a file with a model version, logging every row."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.serving.batch import BatchResult
    from keel.workspace import Workspace

__all__ = ["predict_batch"]


def predict_batch(
    project: Workspace, input: Path | str, output: Path | str, ref: str
) -> BatchResult:
    """Score every row of `input` (CSV, CSV.gz or Parquet) with the version `ref` names
    (MODEL@ALIAS or MODEL@N) and write `output` (as `keel predict-batch`).

    Rows are checked against the version's inference contract first: a bad file is refused
    and nothing is written. Every row is logged with slot `batch` before `output` appears,
    so `project.explain(id)` explains any of them.
    """
    from keel.domain.model import parse_model_ref
    from keel.serving.batch import predict_batch as score

    parse_model_ref(ref)  # a malformed reference fails before anything is read
    return score(project, Path(input), Path(output), ref)
