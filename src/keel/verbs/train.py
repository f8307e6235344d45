"""`project.train()`: run the project's pipeline, reusing every step whose inputs did not change."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from keel.pipeline.train import Progress, TrainResult
    from keel.workspace import Workspace

__all__ = ["train"]


def train(
    project: Workspace,
    *,
    force: bool = False,
    as_of: datetime | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Snapshot the data, check its contract, build features, train, evaluate, and register
    the model as a new version holding the `candidate` alias (as `keel train`).

    `force` re-runs every step (a model identical to a registered version is still not
    registered again); `as_of` checks the data's freshness as of that time instead of now;
    `progress(step, text)` is called as each step finishes.
    """
    from keel.pipeline.train import train as run

    return run(project, force=force, as_of=as_of, progress=progress)
