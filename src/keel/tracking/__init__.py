"""Tracking for training code: params, metrics and metric series, tags and artifacts.

Training code receives a `RunContext` explicitly (there is no global "active run"):

    with project.start_run(params={"max_depth": 6}) as run:
        run.log_metric("auc", 0.91)

`Tracker` makes contexts for any metadata store; `reap_dead_runs` marks runs whose process
died as failed.
"""

from keel.tracking.context import (
    RunContext,
    RunOptions,
    Tracker,
    pid_alive,
    reap_dead_runs,
)

__all__ = ["RunContext", "RunOptions", "Tracker", "pid_alive", "reap_dead_runs"]
