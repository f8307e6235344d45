"""A table's sketch: one column sketch per column, updated batch by batch, merged, stored."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

from keel.stats.sketch.arrow import column_kind
from keel.stats.sketch.column import MAX_CATEGORIES, TAIL_BUCKETS, ColumnSketch
from keel.stats.sketch.documents import _integer
from keel.stats.sketch.linear import LINEAR_BINS
from keel.stats.sketch.numeric import MAX_BUCKETS, NumericSketch

__all__ = ["SKETCH_KIND", "SKETCH_VERSION", "TableSketch"]


SKETCH_KIND: Final = "keel/sketch"
#: 2 added the numbers' linear grid and the categories' tail buckets. Version 1 documents
#: (reference sketches of models registered before) still read, without either.
SKETCH_VERSION: Final = 2
_READABLE: Final = (1, 2)


@dataclass(eq=True)
class TableSketch:
    """Sketches of a table's columns, updated batch by batch and merged window by window."""

    columns: dict[str, ColumnSketch] = field(default_factory=dict)
    rows: int = 0

    @classmethod
    def of(cls, table: pa.Table, columns: Sequence[str] | None = None) -> TableSketch:
        """Sketch `table`, or only the named `columns` (`ValueError` for a column it lacks)."""
        if columns is not None:
            missing = [name for name in columns if name not in table.column_names]
            if missing:
                raise ValueError(f"table has no column {', '.join(map(repr, missing))}")
            table = table.select(list(columns))
        sketch = cls()
        sketch.update(table)
        return sketch

    def update(self, table: pa.Table) -> None:
        """Add one batch. Every column of `table` of a summarised type is sketched: a column
        seen for the first time counts the rows before it as missing, and a column this batch
        lacks counts the batch's rows as missing."""
        rows = table.num_rows
        present: set[str] = set()
        for index, arrow_field in enumerate(table.schema):
            name = arrow_field.name
            if name in present:
                raise ValueError(f"table has two columns named {name!r}")
            present.add(name)
            values = table.column(index)
            sketch = self.columns.get(name)
            if sketch is None:
                if column_kind(values.type) is None:
                    continue
                sketch = ColumnSketch.empty(name, values.type)
                sketch.add_missing(self.rows)
                self.columns[name] = sketch
            sketch.update(values)
        for name, sketch in self.columns.items():
            if name not in present:
                sketch.add_missing(rows)
        self.rows += rows

    def merge(self, other: TableSketch) -> TableSketch:
        """A new sketch of both tables' rows; a column one side lacks is missing there."""
        merged: dict[str, ColumnSketch] = {}
        for name in [*self.columns, *(n for n in other.columns if n not in self.columns)]:
            mine, theirs = self.columns.get(name), other.columns.get(name)
            if mine is None:
                assert theirs is not None
                mine = _all_missing(theirs, self.rows)
            if theirs is None:
                theirs = _all_missing(mine, other.rows)
            merged[name] = mine.merge(theirs)
        return TableSketch(columns=merged, rows=self.rows + other.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": SKETCH_KIND,
            "version": SKETCH_VERSION,
            "rows": self.rows,
            "max_buckets": MAX_BUCKETS,
            "max_categories": MAX_CATEGORIES,
            "linear_bins": LINEAR_BINS,
            "tail_buckets": TAIL_BUCKETS,
            "columns": [column.to_dict() for column in self.columns.values()],
        }

    def to_json(self) -> bytes:
        """Canonical JSON (sorted keys, no spaces): the same sketch is always the same bytes."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> TableSketch:
        """Read a stored sketch; `ValueError` naming the field for anything malformed."""
        if not isinstance(document, Mapping):
            raise ValueError("not a keel sketch: expected an object")
        if document.get("kind") != SKETCH_KIND:
            raise ValueError(f"kind: not a keel sketch, kind is {document.get('kind')!r}")
        version = document.get("version")
        if version not in _READABLE or isinstance(version, bool):
            raise ValueError(
                f"version: this keel reads sketch versions "
                f"{', '.join(map(str, _READABLE))}, got {version!r}; upgrade keelml"
            )
        limits: list[tuple[str, int]] = [
            ("max_buckets", MAX_BUCKETS),
            ("max_categories", MAX_CATEGORIES),
        ]
        if version >= 2:
            limits += [("linear_bins", LINEAR_BINS), ("tail_buckets", TAIL_BUCKETS)]
        for key, expected in limits:
            if document.get(key) != expected:
                raise ValueError(f"{key}: this keel uses {expected}, got {document.get(key)!r}")
        rows = _integer(document, "rows", "sketch")
        raw_columns = document.get("columns")
        if not isinstance(raw_columns, list):
            raise ValueError("columns: expected a list")
        columns: dict[str, ColumnSketch] = {}
        for position, raw in enumerate(raw_columns):
            where = f"columns[{position}]"
            column = ColumnSketch.from_dict(raw, where, version)
            if column.name in columns:
                raise ValueError(f"{where}.name: column {column.name!r} appears twice")
            if column.count != rows:
                raise ValueError(f"{where}.count: must equal rows ({rows}), got {column.count}")
            columns[column.name] = column
        return cls(columns=columns, rows=rows)

    @classmethod
    def from_json(cls, data: bytes | str) -> TableSketch:
        try:
            document = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a keel sketch: invalid JSON: {exc}") from None
        return cls.from_dict(document)


def _all_missing(like: ColumnSketch, rows: int) -> ColumnSketch:
    sketch = ColumnSketch(
        name=like.name,
        kind=like.kind,
        arrow_type=like.arrow_type,
        numeric=NumericSketch.empty() if like.kind == "numeric" else None,
    )
    sketch.add_missing(rows)
    return sketch
