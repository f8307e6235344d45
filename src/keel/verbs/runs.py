"""`project.runs()` and `project.run()`: training runs, and one with what it logged.

Both first mark failed the runs whose process died without finishing them, so a crashed
training never shows as running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.domain.run import MetricSummary, Run, RunArtifact, RunStatus, StepRecord
    from keel.workspace import Workspace

__all__ = ["RunDetail", "Runs", "run", "runs"]


@dataclass(frozen=True)
class Runs:
    """Runs, newest first, and those just marked failed (`reaped`: their process was gone)."""

    runs: list[Run]
    reaped: list[Run]

    def to_dict(self) -> dict[str, Any]:
        return {"runs": [r.to_dict() for r in self.runs], "reaped": [r.id for r in self.reaped]}


@dataclass(frozen=True)
class RunDetail:
    """One run with its params, metric summaries, tags, artifacts and pipeline steps."""

    run: Run
    params: dict[str, str]
    metrics: list[MetricSummary]
    tags: dict[str, str]
    artifacts: list[RunArtifact]
    steps: list[StepRecord]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": {
                **self.run.to_dict(),
                "params": self.params,
                "metrics": [
                    {"key": m.key, "last": m.last, "step": m.step, "count": m.count}
                    for m in self.metrics
                ],
                "tags": self.tags,
                "artifacts": [
                    {"name": a.name, "digest": str(a.digest), "size": a.size}
                    for a in self.artifacts
                ],
                "steps": [
                    {
                        "step": s.step,
                        "outcome": s.outcome,
                        "cache_key": s.cache_key,
                        "output": None if s.output is None else str(s.output),
                        "seconds": s.seconds,
                    }
                    for s in self.steps
                ],
            }
        }


def runs(project: Workspace, *, limit: int | None = None, status: RunStatus | None = None) -> Runs:
    """Runs, newest first (as `keel runs list`): the newest `limit`, of `status` (running,
    completed or failed) if given. A status keel does not know is a `ConfigError`."""
    from keel.domain.run import RUN_STATUSES
    from keel.errors import ConfigError
    from keel.tracking import reap_dead_runs

    if status is not None and status not in RUN_STATUSES:
        raise ConfigError(
            f"unknown run status {status!r}",
            problems=[("status", f"must be one of {', '.join(RUN_STATUSES)}")],
        )
    if limit is not None and limit < 1:
        raise ConfigError(f"limit {limit} is below 1", problems=[("limit", "at least 1")])
    store = project.metadata.runs
    reaped = reap_dead_runs(store)
    return Runs(store.list(limit=limit, status=status), reaped)


def run(project: Workspace, run_id: str) -> RunDetail:
    """One run by id or at least 6 leading characters of one (as `keel runs show`), with
    its params, metrics, tags, artifacts and steps; `NotFound` otherwise."""
    from keel.tracking import reap_dead_runs

    store = project.metadata.runs
    reap_dead_runs(store)
    found = store.resolve(run_id)
    return RunDetail(
        found,
        store.params(found.id),
        store.metric_summaries(found.id),
        store.tags(found.id),
        store.artifacts(found.id),
        store.steps(found.id),
    )
