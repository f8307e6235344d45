"""What changed between two dataset versions: rows, time range, schema, and column statistics.

    diff = diff_versions(old, new, old_profile, new_profile)
    diff.added, diff.removed, diff.retyped, diff.columns

Pure: works on two `DatasetVersion`s and their profiles; loading them is the caller's job.
Schema changes come from the versions' recorded schemas, statistics from the profiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keel.domain.dataset import DatasetVersion, TimeRange
from keel.stats.profile import ColumnProfile, Profile

__all__ = ["ColumnChange", "DatasetDiff", "TypeChange", "diff_versions"]


@dataclass(frozen=True, slots=True)
class TypeChange:
    """A column present in both versions with another Arrow type."""

    name: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ColumnChange:
    """A column in both versions whose null rate, mean or distinct count moved.

    Each pair is (old, new); `mean` is None for a column that is not numeric (or has no
    finite value), `distinct` for one that is not a string column.
    """

    name: str
    null_rate: tuple[float, float]
    mean: tuple[float | None, float | None]
    distinct: tuple[int | None, int | None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "null_rate": {"old": self.null_rate[0], "new": self.null_rate[1]},
            "mean": {"old": self.mean[0], "new": self.mean[1]},
            "distinct": {"old": self.distinct[0], "new": self.distinct[1]},
        }


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    """Differences from `old` to `new`. Empty lists mean no change of that kind."""

    old: DatasetVersion
    new: DatasetVersion
    added: tuple[tuple[str, str], ...]
    removed: tuple[tuple[str, str], ...]
    retyped: tuple[TypeChange, ...]
    columns: tuple[ColumnChange, ...]

    @property
    def identical(self) -> bool:
        """The same content: one version compared with itself."""
        return self.old.id == self.new.id

    @property
    def schema_changed(self) -> bool:
        return bool(self.added or self.removed or self.retyped)

    @property
    def rows_delta(self) -> int:
        return self.new.rows - self.old.rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": str(self.old.id),
            "new": str(self.new.id),
            "identical": self.identical,
            "rows": {"old": self.old.rows, "new": self.new.rows, "delta": self.rows_delta},
            "time_range": {
                "old": _time_range(self.old.time_range),
                "new": _time_range(self.new.time_range),
            },
            "schema": {
                "added": [{"name": n, "type": t} for n, t in self.added],
                "removed": [{"name": n, "type": t} for n, t in self.removed],
                "retyped": [{"name": c.name, "old": c.old, "new": c.new} for c in self.retyped],
            },
            "columns": [change.to_dict() for change in self.columns],
        }


def diff_versions(
    old: DatasetVersion, new: DatasetVersion, old_profile: Profile, new_profile: Profile
) -> DatasetDiff:
    """Compare two versions (and their profiles), columns in `new`'s order."""
    old_types = dict(old.columns)
    new_types = dict(new.columns)
    added = tuple((name, kind) for name, kind in new.columns if name not in old_types)
    removed = tuple((name, kind) for name, kind in old.columns if name not in new_types)
    retyped = tuple(
        TypeChange(name, old_types[name], kind)
        for name, kind in new.columns
        if name in old_types and old_types[name] != kind
    )
    changes = []
    for name, _ in new.columns:
        if name not in old_types:
            continue
        change = _column_change(name, _column(old_profile, name), _column(new_profile, name))
        if change is not None:
            changes.append(change)
    return DatasetDiff(
        old=old,
        new=new,
        added=added,
        removed=removed,
        retyped=retyped,
        columns=tuple(changes),
    )


def _column(profile: Profile, name: str) -> ColumnProfile | None:
    try:
        return profile.column(name)
    except KeyError:
        return None


def _column_change(
    name: str, old: ColumnProfile | None, new: ColumnProfile | None
) -> ColumnChange | None:
    if old is None or new is None:
        return None
    change = ColumnChange(
        name=name,
        null_rate=(old.null_rate, new.null_rate),
        mean=(_mean(old), _mean(new)),
        distinct=(_distinct(old), _distinct(new)),
    )
    moved = (
        change.null_rate[0] != change.null_rate[1]
        or change.mean[0] != change.mean[1]
        or change.distinct[0] != change.distinct[1]
    )
    return change if moved else None


def _mean(column: ColumnProfile) -> float | None:
    return column.numeric.mean if column.numeric is not None else None


def _distinct(column: ColumnProfile) -> int | None:
    return column.categorical.distinct if column.categorical is not None else None


def _time_range(time_range: TimeRange | None) -> dict[str, str] | None:
    if time_range is None:
        return None
    return {
        "column": time_range.column,
        "start": time_range.start.isoformat(),
        "end": time_range.end.isoformat(),
    }
