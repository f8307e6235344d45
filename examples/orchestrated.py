"""A keel pipeline as an orchestrator runs it: plain functions, one per task.

Each function opens the project, calls keel's verbs and returns a small JSON-ready summary
(what an Airflow, Prefect or Dagster task passes on to the next one, e.g. through XCom).
Two flows:

- on every change of code or data: `train_candidate`, then `gate_and_request` (the release
  gates decide; when the policy needs an approval a release request is opened, and a person
  approves it with `keel approve ID` or in the web UI);
- on a schedule (hourly, daily): `monitor_production`, then `retrain_if_triggered`.

For example, with Airflow's TaskFlow API:

    @task
    def train() -> dict:
        return orchestrated.train_candidate(PROJECT)

    @task
    def gate(trained: dict) -> dict:
        return orchestrated.gate_and_request(PROJECT, trained["ref"])

The acting user is KEEL_USER (set it to the orchestrator's service account); keel.yaml's
release policy, approvals and audit log apply as they do on the command line.

    python examples/orchestrated.py path/to/project     # every task once, in order
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import keel

__all__ = ["gate_and_request", "monitor_production", "retrain_if_triggered", "train_candidate"]


def train_candidate(folder: str | Path, as_of: datetime | None = None) -> dict[str, Any]:
    """Train; a new model version holds `candidate` (None when nothing changed). `as_of`
    checks the data's freshness as of that time (a backfill), not now."""
    with keel.Project.open(folder) as project:
        result = project.train(as_of=as_of)
        version = result.registered or result.unchanged
        return {
            "run": result.run_id,
            "metrics": result.metrics,
            "registered": result.registered is not None,
            "ref": None if version is None else version.ref,
        }


def gate_and_request(folder: str | Path, ref: str, alias: str = "production") -> dict[str, Any]:
    """Put `ref` through the release gates for `alias`: it moves at once, waits for an
    approval (a release request is opened), or is refused with the gates that failed."""
    with keel.Project.open(folder) as project:
        promotion = project.promote(ref, alias, reason="scheduled pipeline")
        return {
            "outcome": promotion.outcome,
            "gates": {gate.gate: gate.passed for gate in promotion.gates},
            "request": None if promotion.request is None else promotion.request.id,
        }


def monitor_production(folder: str | Path) -> dict[str, Any]:
    """Judge the newest windows of production's predictions; alerts open and resolve."""
    with keel.Project.open(folder) as project:
        report = project.monitor()
        return {
            "model": report.model,
            "reference": report.version,
            "windows": [
                {"start": w.start.isoformat(), "rows": w.rows, "drifted": list(w.drifted)}
                for w in report.windows
            ],
            "open_alerts": [alert.message for alert in report.open_alerts],
        }


def retrain_if_triggered(folder: str | Path) -> dict[str, Any]:
    """Retrain when a trigger of keel.yaml's retraining policy fired, and release the
    challenger as the policy says (through the same gates and approvals)."""
    with keel.Project.open(folder) as project:
        outcome = project.retrain(if_triggered=True)
        return {
            "decision": outcome.decision,
            "fired": [trigger.name for trigger in outcome.triggers if trigger.fired],
            "challenger": outcome.challenger,
        }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Run every task once, in order.")
    parser.add_argument("project", help="the project's folder")
    parser.add_argument(
        "--as-of",
        type=datetime.fromisoformat,
        default=None,
        help="train as of this time (ISO-8601), for data older than its freshness limit",
    )
    args = parser.parse_args(argv)
    folder = args.project
    trained = train_candidate(folder, as_of=args.as_of)
    steps: dict[str, Any] = {"train": trained}
    if trained["ref"] is not None:
        steps["gate"] = gate_and_request(folder, trained["ref"])
    steps["monitor"] = monitor_production(folder)
    steps["retrain"] = retrain_if_triggered(folder)
    print(json.dumps(steps, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
