"""Windows of the prediction log: where a moment falls, and a window read with given columns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

from keel.errors import ConfigError

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["align"]


def _read(
    project: Workspace,
    model: str,
    start: datetime,
    end: datetime,
    columns: Sequence[str],
    version: int | None = None,
) -> pa.Table:
    """`read_window` with these columns; a column no row of the window has is all null."""
    from keel.predlog.read import read_window

    try:
        return read_window(project, model, start, end, version=version, columns=columns)
    except ConfigError:
        pass  # some column is in no part of the window (an empty window has none)
    table = read_window(project, model, start, end, version=version)
    for name in columns:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    return table.select(list(columns))


def align(moment: datetime, window: timedelta) -> datetime:
    """The start of the window holding `moment`, windows being laid end to end from the
    Unix epoch (so daily windows are UTC days)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (moment - epoch) // window * window
