"""`project.compact_predictions()`: move old rows of the prediction log into Parquet segments."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.predlog.read import CompactionReport
    from keel.workspace import Workspace

__all__ = ["compact_predictions"]


def compact_predictions(
    project: Workspace,
    *,
    older_than: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> CompactionReport:
    """Move every logged prediction older than `older_than` (before `now`) into Parquet
    segments in the artifact store, per model version (as `keel predictions compact`).
    Safe while the server logs and while another compaction runs: rows are deleted only in
    the transaction that indexes the segment holding them. `report.rows`,
    `report.segments`."""
    from keel.predlog.read import compact

    return compact(project, older_than=older_than, now=now)
