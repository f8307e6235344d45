"""Lineage exports: OpenLineage run events for keel training runs."""

from keel.lineage.openlineage import (
    FileEmitter,
    HttpEmitter,
    InputDatasetInfo,
    ModelOutputInfo,
    RunInfo,
    complete_event,
    emitter_for,
    event_to_dict,
    fail_event,
    openlineage_run_id,
    start_event,
)

__all__ = [
    "FileEmitter",
    "HttpEmitter",
    "InputDatasetInfo",
    "ModelOutputInfo",
    "RunInfo",
    "complete_event",
    "emitter_for",
    "event_to_dict",
    "fail_event",
    "openlineage_run_id",
    "start_event",
]
