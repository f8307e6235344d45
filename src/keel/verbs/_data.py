"""Data a verb reads: a file, glob or folder, or, in a project, a dataset version."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.workspace import Workspace

__all__ = ["load_data", "looks_like_path"]


def looks_like_path(ref: str) -> bool:
    return any(ch in ref for ch in "/\\*?[") or Path(ref).exists() or "." in ref


def load_data(project: Workspace | None, ref: str) -> tuple[pa.Table, str, list[str]]:
    """The table `ref` names, how to name its source, and notices of the source columns left
    out of it (row indexes). Outside a project `ref` can only be a path."""
    from keel.data import read_data
    from keel.errors import ConfigError, DataError

    if looks_like_path(ref) or project is None:
        read = read_data(ref)  # read_data names a missing file
        return read.table, ref, read.notices()
    from keel.data.snapshot import load_table

    try:
        version = project.metadata.datasets.resolve(ref)
    except ConfigError:
        raise DataError(
            f"{ref}: no such file or folder, and not a dataset version "
            "('latest', a version id, or 6+ hex characters of one)",
            path=ref,
            hint="`keel data list` shows the recorded versions",
        ) from None
    notices = [f"left out {column.describe()}" for column in version.left_out]
    return load_table(project, version.id), f"dataset {version.id.short}", notices
