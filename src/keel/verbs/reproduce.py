"""`project.reproduce()`: rebuild a model version from its lineage and compare."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.pipeline.reproduce import ReproduceReport
    from keel.pipeline.train import Progress
    from keel.workspace import Workspace

__all__ = ["reproduce"]


def reproduce(
    project: Workspace,
    ref: str,
    *,
    tolerance: float = 1e-9,
    progress: Progress | None = None,
) -> ReproduceReport:
    """Rebuild `ref` (MODEL@VERSION or MODEL@ALIAS) from its recorded dataset, code and
    params, and compare metrics and package with the recorded ones (as `keel reproduce`).

    `report.metrics_match` says whether every metric is within `tolerance`.
    """
    from keel.domain.model import parse_model_ref
    from keel.pipeline.reproduce import reproduce as run

    parse_model_ref(ref)  # a malformed reference fails before the stores open
    return run(project, ref, tolerance=tolerance, progress=progress)
