"""What changed between two contracts, and which changes break consumers.

A change is *breaking* when code or a model built against OLD can fail on data that satisfies
NEW because a schema guarantee was lost: a column removed, a type changed (except integer to
float's reverse: float to integer keeps every value a float), a column that was never null may
now be null, the key or the timestamp column changed. Statistical changes (ranges, domains,
null-rate and row bounds, freshness) are reported as non-breaking: they are drift to review, and
keel's checks, not consumer code, enforce them; a widened domain's reason says that encoders must
cope with the new values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from keel.contracts.model import ColumnContract, Contract
from keel.domain.duration import format_duration

__all__ = ["ChangeKind", "SchemaChange", "diff_contracts"]

ChangeKind = Literal[
    "column_added",
    "column_removed",
    "type_changed",
    "nullability_changed",
    "null_rate_changed",
    "range_widened",
    "range_narrowed",
    "range_changed",
    "domain_widened",
    "domain_narrowed",
    "domain_changed",
    "key_changed",
    "timestamp_changed",
    "freshness_changed",
    "rows_changed",
]


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """One difference between two contracts; `column` is None for table-level changes."""

    kind: ChangeKind
    column: str | None
    breaking: bool
    reason: str
    old: Any = None
    new: Any = None


def diff_contracts(old: Contract, new: Contract) -> list[SchemaChange]:
    """Every change from `old` to `new`: table-level first, then columns in `old`'s order
    (added columns last, in `new`'s order)."""
    changes = _table_changes(old, new)
    new_columns = {column.name: column for column in new.columns}
    for column in old.columns:
        after = new_columns.get(column.name)
        if after is None:
            changes.append(
                SchemaChange(
                    "column_removed",
                    column.name,
                    True,
                    f"column '{column.name}' ({column.type}) is gone; readers of it will fail",
                    old=column.type,
                )
            )
        else:
            changes += _column_changes(column, after)
    listed = set(old.names)
    for column in new.columns:
        if column.name not in listed:
            changes.append(
                SchemaChange(
                    "column_added",
                    column.name,
                    False,
                    f"new column '{column.name}' ({column.type}); existing readers ignore it",
                    new=column.type,
                )
            )
    return changes


def _table_changes(old: Contract, new: Contract) -> list[SchemaChange]:
    changes = []
    if old.key != new.key:
        # Unique on fewer columns implies unique on more: only then does the old promise hold.
        lost = bool(old.key) and not (new.key and set(new.key) <= set(old.key))
        reason = f"key ({', '.join(old.key) or 'none'}) -> ({', '.join(new.key) or 'none'}): " + (
            "rows may no longer be unique on the old key" if lost else "a stricter key"
        )
        changes.append(SchemaChange("key_changed", None, lost, reason, old.key, new.key))
    old_ts, new_ts = old.timestamp, new.timestamp
    old_column = old_ts.column if old_ts else None
    new_column = new_ts.column if new_ts else None
    if old_column != new_column:
        changes.append(
            SchemaChange(
                "timestamp_changed",
                None,
                old_column is not None,
                f"timestamp column {old_column or 'none'} -> {new_column or 'none'}",
                old_column,
                new_column,
            )
        )
    elif old_ts and new_ts and old_ts.freshness != new_ts.freshness:
        before, after = format_duration(old_ts.freshness), format_duration(new_ts.freshness)
        looser = new_ts.freshness > old_ts.freshness
        changes.append(
            SchemaChange(
                "freshness_changed",
                old_ts.column,
                False,
                f"freshness {before} -> {after} ({'looser' if looser else 'stricter'})",
                before,
                after,
            )
        )
    if old.rows != new.rows:
        changes.append(
            SchemaChange(
                "rows_changed",
                None,
                False,
                f"row bounds {_bounds(old.rows)} -> {_bounds(new.rows)}",
                _bounds(old.rows),
                _bounds(new.rows),
            )
        )
    return changes


def _column_changes(old: ColumnContract, new: ColumnContract) -> list[SchemaChange]:
    name = old.name
    changes = []
    if old.type != new.type:
        safe = old.type == "float" and new.type == "integer"
        why = "integers are valid floats" if safe else "readers expecting the old type will fail"
        changes.append(
            SchemaChange(
                "type_changed",
                name,
                not safe,
                f"{name}: type {old.type} -> {new.type}: {why}",
                old.type,
                new.type,
            )
        )
    if old.nullable != new.nullable:
        loosened = new.nullable
        why = "nulls may now appear" if loosened else "nulls are no longer allowed"
        changes.append(
            SchemaChange(
                "nullability_changed",
                name,
                loosened,
                f"{name}: nullable {old.nullable} -> {new.nullable}: {why}",
                old.nullable,
                new.nullable,
            )
        )
    if old.max_null_rate != new.max_null_rate:
        changes.append(
            SchemaChange(
                "null_rate_changed",
                name,
                False,
                f"{name}: null-rate bound {old.max_null_rate} -> {new.max_null_rate}",
                old.max_null_rate,
                new.max_null_rate,
            )
        )
    change = _range_change(old, new)
    if change is not None:
        changes.append(change)
    change = _domain_change(old, new)
    if change is not None:
        changes.append(change)
    return changes


def _range_change(old: ColumnContract, new: ColumnContract) -> SchemaChange | None:
    if old.range == new.range:
        return None
    before = _bounds(old.range)
    after = _bounds(new.range)
    low_old, high_old = (old.range.min, old.range.max) if old.range else (None, None)
    low_new, high_new = (new.range.min, new.range.max) if new.range else (None, None)
    wider_low = _looser(low_new, low_old, lower=True)
    wider_high = _looser(high_new, high_old, lower=False)
    tighter_low = _looser(low_old, low_new, lower=True)
    tighter_high = _looser(high_old, high_new, lower=False)
    if (wider_low or wider_high) and not (tighter_low or tighter_high):
        kind: Any = "range_widened"
    elif (tighter_low or tighter_high) and not (wider_low or wider_high):
        kind = "range_narrowed"
    else:
        kind = "range_changed"
    words = kind.removeprefix("range_")
    return SchemaChange(
        kind, old.name, False, f"{old.name}: range {before} -> {after} ({words})", before, after
    )


def _looser(a: Any, b: Any, *, lower: bool) -> bool:
    """Whether bound `a` admits values bound `b` does not (None is open)."""
    if a == b:
        return False
    if a is None:
        return True
    if b is None:
        return False
    return bool(a < b) if lower else bool(a > b)


def _domain_change(old: ColumnContract, new: ColumnContract) -> SchemaChange | None:
    if old.domain == new.domain:
        return None
    name = old.name
    before = set(old.domain) if old.domain is not None else None
    after = set(new.domain) if new.domain is not None else None
    if after is None:
        return SchemaChange(
            "domain_widened",
            name,
            False,
            f"{name}: domain removed, any value allowed; encoders must accept unseen values",
            old.domain,
            None,
        )
    if before is None:
        return SchemaChange(
            "domain_narrowed",
            name,
            False,
            f"{name}: domain added ({len(after)} values)",
            None,
            new.domain,
        )
    added = sorted(after - before, key=str)
    removed = sorted(before - after, key=str)
    if added and not removed:
        kind: Any = "domain_widened"
        reason = f"new values {_few(added)}; encoders must accept them"
    elif removed and not added:
        kind = "domain_narrowed"
        reason = f"values {_few(removed)} no longer allowed"
    elif added or removed:
        kind = "domain_changed"
        reason = f"added {_few(added)}, removed {_few(removed)}"
    else:
        return None  # same values, another order
    return SchemaChange(kind, name, False, f"{name}: {reason}", old.domain, new.domain)


def _few(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:5])
    return shown + (f" and {len(values) - 5} more" if len(values) > 5 else "")


def _bounds(bounds: Any) -> str:
    if bounds is None:
        return "none"
    low = "-inf" if bounds.min is None else bounds.min
    high = "inf" if bounds.max is None else bounds.max
    return f"[{low}, {high}]"
