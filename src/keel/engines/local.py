"""The in-process engine: the source read into one Arrow table, then sketched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.data.lake import Location
    from keel.data.scan import Scanned
    from keel.domain.dataset import Manifest
    from keel.stats.sketch import TableSketch

__all__ = ["LocalEngine"]


class LocalEngine:
    """Reads the source with `keel.data.read_table` (CSV or Parquet files, globs, folders)."""

    name = "local"

    def sketch(self, source: str, columns: Sequence[str] | None = None) -> tuple[TableSketch, int]:
        from keel.data import read_table
        from keel.stats.sketch import TableSketch

        table = read_table(source)
        if columns is not None:
            check_columns(source, table.column_names, columns)
        sketch = TableSketch.of(table, None if columns is None else list(columns))
        return sketch, table.num_rows

    def scan_manifest(self, where: Location, manifest: Manifest, timestamp: str | None) -> Scanned:
        """Exact up to `keel.data.manifest.EXACT_PROFILE_BYTES`, above from sketches."""
        from keel.data.manifest import scan_manifest

        return scan_manifest(where, manifest, timestamp)


def check_columns(source: str, present: Sequence[str], wanted: Sequence[str]) -> None:
    """`ConfigError` (field `columns`) for the first of `wanted` that `source` lacks."""
    from keel.errors import ConfigError

    have = set(present)
    for name in wanted:
        if name not in have:
            shown = ", ".join(present[:8]) + (
                f" and {len(present) - 8} more" if len(present) > 8 else ""
            )
            rule = f"{source} has no column {name!r} (it has {shown})"
            raise ConfigError(rule, problems=[("columns", rule)])
