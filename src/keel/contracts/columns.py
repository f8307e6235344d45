"""Column names keel accepts, and the row-index columns it leaves out of the data.

pandas writes a frame's row index as a first column with an empty header (`DataFrame.to_csv()`
does by default); read back by pandas that column is named `Unnamed: 0`, and written again it
becomes a second one; Parquet written by pandas keeps a non-default index as
`__index_level_0__`. Such a column numbers the rows, it is not data: kept, it would become the
contract's key and a model input that a request cannot name (the Open Inference Protocol needs
a non-empty input name).

The rules, applied wherever data enters keel (reading files, SQL results, inferring contracts):
- A row index is left out, and reported as a `LeftOutColumn`: a column named `__index_level_N__`,
  or a column before every named column whose header is empty, blank or `Unnamed: N`, that holds
  distinct whole numbers with no nulls (0..n-1 as pandas writes it, 1..n, or the surviving labels
  of a sampled or filtered frame).
- Any other column with an empty or blank name is refused (a `DataError` naming its position and
  this rule): keel does not invent names for data.
- Names must be distinct; spaces inside a name are fine (`Customer Age`).
"""

from __future__ import annotations

import re
from typing import Final

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.domain.dataset import LeftOutColumn
from keel.errors import DataError

__all__ = ["INDEX_REASON", "check_column_names", "split_index_columns"]

#: Why an index column was left out, as recorded with a dataset version.
INDEX_REASON: Final = "a row index (distinct whole numbers under an empty or pandas-made header)"

_PANDAS_UNNAMED = re.compile(r"^Unnamed: \d+$")
_PANDAS_INDEX_LEVEL = re.compile(r"^__index_level_\d+__$")
_RULE: Final = (
    "every column needs a name; an unnamed leading column of distinct whole numbers is taken "
    "as a row index and left out"
)


def split_index_columns(table: pa.Table, where: str) -> tuple[pa.Table, tuple[LeftOutColumn, ...]]:
    """The table without its row-index columns, and those columns (1-based positions).

    Raises DataError, naming `where` (a file, or the option the data came from), the column's
    position and the rule, for any other column whose name is empty or blank.
    """
    names: list[str] = table.column_names
    left_out: list[LeftOutColumn] = []
    leading = True
    for position, name in enumerate(names, start=1):
        blank = not name.strip()
        unnamed = blank or bool(_PANDAS_UNNAMED.match(name))
        maybe_index = bool(_PANDAS_INDEX_LEVEL.match(name)) or (leading and unnamed)
        if maybe_index and _is_row_index(table.column(position - 1)):
            left_out.append(LeftOutColumn(position, name, INDEX_REASON))
            continue
        if blank:
            raise DataError(
                f"{where}: column {position} has {'an empty' if not name else 'a blank'} "
                f"header ({_describe(table.column(position - 1))}): {_RULE}",
                path=where,
                hint="name the column in the header, or write the file without it "
                "(pandas: DataFrame.to_csv(index=False))",
            )
        if not unnamed:
            leading = False
    if not left_out:
        return table, ()
    return table.drop_columns([c.name for c in left_out]), tuple(left_out)


def check_column_names(names: list[str], where: str) -> None:
    """Refuse a blank or repeated name; DataError names `where`, the position and the rule."""
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name.strip():
            raise DataError(
                f"{where}: column {position} has an empty name: every column needs a name",
                path=where,
            )
        if name in seen:
            raise DataError(f"{where}: column '{name}' appears more than once", path=where)
        seen.add(name)


def _is_row_index(values: pa.ChunkedArray) -> bool:
    if not pa.types.is_integer(values.type) or values.null_count or len(values) == 0:
        return False
    low = pc.min(values).as_py()
    return bool(low >= 0 and pc.count_distinct(values).as_py() == len(values))


def _describe(values: pa.ChunkedArray) -> str:
    sample = [v for v in values.slice(0, 3).to_pylist()]
    shown = ", ".join(repr(v) for v in sample)
    return f"{values.type} values such as {shown}" if sample else f"{values.type}, no values"
