"""`project.datasets()` and `project.dataset()`: dataset versions, and one with its profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.domain.dataset import DatasetVersion, Manifest
    from keel.stats.profile import Profile
    from keel.workspace import Workspace

__all__ = ["DatasetDetail", "Datasets", "dataset", "datasets"]


@dataclass(frozen=True)
class Datasets:
    """Dataset versions, newest first."""

    versions: list[DatasetVersion]

    def to_dict(self) -> dict[str, Any]:
        return {"versions": [v.to_dict() for v in self.versions]}


@dataclass(frozen=True)
class DatasetDetail:
    """One dataset version, the size of its Parquet copy (None for a manifest version), its
    manifest (None for a copy) and its statistics profile."""

    version: DatasetVersion
    parquet_size: int | None
    profile: Profile
    manifest: Manifest | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.to_dict(),
            "parquet_size": self.parquet_size,
            "manifest": None if self.manifest is None else self.manifest.summary(),
            "profile": self.profile.to_dict(),
        }


def datasets(project: Workspace, *, limit: int | None = None) -> Datasets:
    """Dataset versions, newest first, the newest `limit` with a limit (as `keel data
    list`). A limit below 1 is a `ConfigError`."""
    from keel.errors import ConfigError

    if limit is not None and limit < 1:
        raise ConfigError(f"limit {limit} is below 1", problems=[("limit", "at least 1")])
    return Datasets(project.metadata.datasets.list(limit=limit))


def dataset(project: Workspace, ref: str) -> DatasetDetail:
    """A dataset version (`latest`, an id or at least 6 leading hex characters of one) with
    its statistics profile, verified by hash (as `keel data show`); `NotFound` otherwise."""
    from keel.data.snapshot import load_manifest, load_profile

    version = project.metadata.datasets.resolve(ref)
    profile = load_profile(project, version)
    if version.parquet is None:
        return DatasetDetail(version, None, profile, load_manifest(project, version))
    return DatasetDetail(version, project.metadata.artifacts.get(version.parquet).size, profile)
