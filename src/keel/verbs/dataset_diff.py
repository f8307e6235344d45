"""`project.dataset_diff()`: what changed from one dataset version to another."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.data.diff import DatasetDiff
    from keel.workspace import Workspace

__all__ = ["DatasetComparison", "dataset_diff"]


@dataclass(frozen=True)
class DatasetComparison:
    """Two dataset versions compared (`diff.old`, `diff.new`): rows, time range, schema, and
    the column statistics that moved."""

    diff: DatasetDiff

    def to_dict(self) -> dict[str, Any]:
        return {"diff": self.diff.to_dict()}


def dataset_diff(project: Workspace, old: str, new: str) -> DatasetComparison:
    """Compare dataset versions `old` and `new` (each `latest`, an id or a unique prefix of
    6+ hex characters) by their verified profiles (as `keel data diff`)."""
    from keel.data.diff import diff_versions
    from keel.data.snapshot import load_profile

    versions = [project.metadata.datasets.resolve(ref) for ref in (old, new)]
    profiles = [load_profile(project, version) for version in versions]
    return DatasetComparison(diff_versions(versions[0], versions[1], profiles[0], profiles[1]))
