"""Hold a table against a contract and list every violation, not just the first.

Cheap statistics decide first (null counts are free in Arrow, min/max and distinct values are one
pass each); offending rows are counted and sampled only for a rule that failed, so a passing
check costs little more than a hand-written one. `now` is an argument: freshness is judged
against the caller's clock, which makes checks reproducible and testable.

Rule ids and their severity (all errors except `unexpected_column`, whose severity the contract's
`extra_columns` sets): see `keel.contracts.report.RULES`. A nullable: false column with nulls is a
`new_null_pattern`, except a key or timestamp column, where any null is `not_nullable`.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from keel.contracts import _arrow
from keel.contracts.model import (
    ColumnContract,
    Contract,
    DomainValue,
    LogicalType,
    NumericRange,
    RowBounds,
    TimestampRule,
)
from keel.contracts.report import CheckResult, ContractReport, Severity, Violation
from keel.domain.duration import format_age, format_duration
from keel.domain.times import TIME_KINDS, as_utc, covers_until, render

__all__ = ["check_contract"]

#: How text that should have been typed looks, to point at the values that are not.
_PARSEABLE = {
    "integer": r"^\s*[+-]?\d+\s*$",
    "float": r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$|^\s*[+-]?(?i:nan|inf|infinity)\s*$",
    "boolean": r"^\s*(?i:true|false|0|1)\s*$",
    "timestamp": r"^\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?(Z|[+-]\d{2}:?\d{2})?$",
    "date": r"^\d{4}-\d{2}-\d{2}$",
}
_NUMERIC = ("integer", "float")


def check_contract(
    table: pa.Table, contract: Contract, *, now: datetime, max_samples: int = 5
) -> ContractReport:
    """Check `table` against `contract`; freshness is measured from `now` (timezone-aware).

    Never raises for bad data: every problem is a violation in the report.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware, e.g. datetime.now(UTC)")
    started = time.perf_counter()
    results = _Checker(table, contract, now, max_samples).run()
    return ContractReport(
        rows=table.num_rows,
        checked_at=now,
        results=tuple(results),
        seconds=time.perf_counter() - started,
    )


class _Checker:
    def __init__(self, table: Any, contract: Contract, now: datetime, max_samples: int) -> None:
        self.table = table
        self.contract = contract
        self.now = now
        self.max_samples = max_samples
        self.rows: int = table.num_rows
        self.results: list[CheckResult] = []
        self.present = set(table.column_names)
        #: Columns whose values can be held to the contract (present, with a compatible type).
        self.usable: set[str] = set()
        self.required = set(contract.key)
        if contract.timestamp is not None:
            self.required.add(contract.timestamp.column)

    def run(self) -> list[CheckResult]:
        if self.contract.rows is not None:
            self._row_count(self.contract.rows)
        for column in self.contract.columns:
            self._column(column)
        self._extra_columns()
        if self.contract.key:
            self._duplicate_key()
        if self.contract.timestamp is not None:
            self._stale(self.contract.timestamp)
        return self.results

    # -- bookkeeping -------------------------------------------------------------------------

    def _pass(self, rule: str, column: str | None) -> None:
        self.results.append(CheckResult(rule, column, "passed"))

    def _skip(self, rule: str, column: str | None, reason: str) -> None:
        self.results.append(CheckResult(rule, column, "skipped", reason=reason))

    def _fail(
        self,
        rule: str,
        column: str | None,
        message: str,
        *,
        observed: Any,
        expected: Any,
        rows: int = 0,
        mask: Any = None,
        severity: Severity = "error",
    ) -> None:
        samples: tuple[dict[str, Any], ...] = ()
        if mask is not None and self.max_samples > 0:
            indices = _arrow.first_indices(mask, self.max_samples)
            samples = tuple(_arrow.rows_at(self.table, indices))
        violation = Violation(rule, column, message, observed, expected, rows, samples, severity)
        self.results.append(CheckResult(rule, column, "failed", violation))

    # -- table rules -------------------------------------------------------------------------

    def _row_count(self, bounds: RowBounds) -> None:
        if bounds.contains(self.rows):
            self._pass("row_count", None)
            return
        expected = {"min": bounds.min, "max": bounds.max}
        limits = " to ".join(f"{b:,}" for b in (bounds.min, bounds.max) if b is not None)
        side = "at least" if bounds.max is None else "at most" if bounds.min is None else ""
        self._fail(
            "row_count",
            None,
            f"{_count(self.rows, 'row')}, expected {side + ' ' if side else ''}{limits}",
            observed=self.rows,
            expected=expected,
        )

    def _extra_columns(self) -> None:
        if self.contract.extra_columns == "allow":
            return
        listed = set(self.contract.names)
        extra = [name for name in self.table.column_names if name not in listed]
        if not extra:
            self._pass("unexpected_column", None)
        severity: Severity = "error" if self.contract.extra_columns == "error" else "warning"
        for name in extra:
            found = _arrow.logical_type(self.table.schema.field(name).type) or "null"
            self._fail(
                "unexpected_column",
                name,
                f"{name}: column is not in the contract (holds {found})",
                observed=found,
                expected=None,
                severity=severity,
            )

    def _duplicate_key(self) -> None:
        key = self.contract.key
        label = ",".join(key)
        unusable = [name for name in key if name not in self.usable]
        if unusable:
            self._skip("duplicate_key", label, f"key column '{unusable[0]}' missing or mistyped")
            return
        if not _arrow.duplicate_count(self.table, key):
            self._pass("duplicate_key", label)
            return
        repeated = _arrow.repeated_keys(self.table, key)
        duplicates = _arrow.count_rows(repeated)
        examples = repeated.slice(0, max(self.max_samples, 1))
        rows = sorted(p for group in examples[_arrow.POSITIONS].to_pylist() for p in group)
        chosen = pa.array(rows[: self.max_samples], pa.int64())
        samples = tuple(_arrow.rows_at(self.table, chosen))
        first = examples.slice(0, 1).to_pylist()[0]
        shown = ", ".join(f"{name}={first[name]!r}" for name in key)
        message = (
            f"key ({', '.join(key)}): {_count(duplicates, 'row')} share their key with another "
            f"row, in {_count(repeated.num_rows, 'key')} (e.g. {shown}: {first[_arrow.COUNT]} rows)"
        )
        observed = {"duplicate_rows": duplicates, "duplicate_keys": repeated.num_rows}
        violation = Violation(
            "duplicate_key", label, message, observed, "unique", duplicates, samples
        )
        self.results.append(CheckResult("duplicate_key", label, "failed", violation))

    def _stale(self, rule: TimestampRule) -> None:
        name = rule.column
        if name not in self.usable:
            self._skip("stale", name, "timestamp column missing or mistyped")
            return
        values = _arrow.column(self.table, name)
        if _arrow.logical_type(values.type) not in TIME_KINDS:
            self._skip("stale", name, "timestamp column holds only nulls")
            return
        newest_scalar = pc.max(values)
        newest = _arrow.scalar(newest_scalar)
        expected = {"freshness": format_duration(rule.freshness)}
        if newest is None:
            self._fail(
                "stale",
                name,
                f"{name}: no timestamps at all, so the data's age is unknown",
                observed={"newest": None},
                expected=expected,
                rows=self.rows,
            )
            return
        # A date vouches for its whole day: a row dated today is fresh until midnight.
        age = self.now - covers_until(newest)
        if age <= rule.freshness:
            self._pass("stale", name)
            return
        self._fail(
            "stale",
            name,
            f"{name}: the newest row is from {render(newest)}, "
            f"{format_age(age)} before {self.now.isoformat()}; freshness allows "
            f"{format_duration(rule.freshness)}",
            observed={"newest": as_utc(newest), "age": format_age(age)},
            expected=expected,
            rows=self.rows,
            mask=pc.equal(values, newest_scalar),
        )

    # -- column rules ------------------------------------------------------------------------

    def _column(self, column: ColumnContract) -> None:
        name = column.name
        value_rules = self._value_rules(column)
        if name not in self.present:
            self._fail(
                "column_missing",
                name,
                f"{name}: column missing (expected {column.type})",
                observed=None,
                expected=column.type,
            )
            for rule in ("type_mismatch", *self._null_rules(column), *value_rules):
                self._skip(rule, name, "column missing")
            return
        self._pass("column_missing", name)
        values = _arrow.column(self.table, name)
        typed = self._type(column, values)
        self._nulls(column, values)
        if not typed:
            for rule in value_rules:
                self._skip(rule, name, "type mismatch")
            return
        self.usable.add(name)
        if column.range is not None:
            if _arrow.logical_type(values.type) in _NUMERIC:
                self._range(column.name, column.range, values)
            else:
                # Only nulls (Arrow's null type): no value can be out of range.
                for rule in value_rules:
                    if rule != "unknown_category":
                        self._pass(rule, name)
        if column.domain is not None:
            self._domain(column.name, column.domain, values)

    def _null_rules(self, column: ColumnContract) -> list[str]:
        rules = []
        if not column.nullable:
            rules.append("not_nullable" if column.name in self.required else "new_null_pattern")
        if column.max_null_rate is not None:
            rules.append("null_rate")
        return rules

    @staticmethod
    def _value_rules(column: ColumnContract) -> list[str]:
        rules = []
        if column.range is not None:
            rules += [
                side
                for side, bound in (
                    ("below_min", column.range.min),
                    ("above_max", column.range.max),
                )
                if bound is not None
            ]
        if column.domain is not None:
            rules.append("unknown_category")
        return rules

    def _type(self, column: ColumnContract, values: Any) -> bool:
        name, expected = column.name, column.type
        found = _arrow.logical_type(values.type)
        if found is None or found == expected or (expected == "float" and found == "integer"):
            # An all-null column fits any type, and integers are exact floats.
            self._pass("type_mismatch", name)
            return True
        valid = pc.is_valid(values)
        mask, detail = valid, ""
        if found == "string" and expected in _PARSEABLE:
            parses = pc.match_substring_regex(values, _PARSEABLE[expected])
            bad = pc.and_(valid, pc.invert(parses))
            bad_count = _arrow.count_true(bad)
            if bad_count:
                mask = bad
                examples = pc.unique(values.filter(bad)).slice(0, 3).to_pylist()
                detail = (
                    f"; {_count(bad_count, 'value')} not {_article(expected)}, e.g. "
                    + ", ".join(repr(v) for v in examples)
                )
            else:
                detail = f"; every value reads as {_article(expected)}: was the column quoted?"
        offending = _arrow.count_true(mask)
        self._fail(
            "type_mismatch",
            name,
            f"{name}: expected {expected}, found {found}{detail}",
            observed=found,
            expected=expected,
            rows=offending,
            mask=mask,
        )
        return False

    def _nulls(self, column: ColumnContract, values: Any) -> None:
        name = column.name
        nulls: int = values.null_count
        rate = nulls / self.rows if self.rows else 0.0
        observed = {"nulls": nulls, "null_rate": round(rate, 6)}
        if not column.nullable:
            if name in self.required:
                rule, why = "not_nullable", "a key or timestamp column, which must never be null"
            else:
                rule, why = "new_null_pattern", "a column that had no nulls in the reference"
            if nulls:
                self._fail(
                    rule,
                    name,
                    f"{name}: {_count(nulls, 'null')} ({rate:.1%} of rows) in {why}",
                    observed=observed,
                    expected={"nullable": False},
                    rows=nulls,
                    mask=pc.is_null(values),
                )
            else:
                self._pass(rule, name)
        bound = column.max_null_rate
        if bound is None:
            return
        if rate <= bound:
            self._pass("null_rate", name)
            return
        self._fail(
            "null_rate",
            name,
            f"{name}: null rate {rate:.2%} is above the bound {bound:.2%} ({nulls:,} nulls)",
            observed=observed,
            expected={"max": bound},
            rows=nulls,
            mask=pc.is_null(values),
        )

    def _range(self, name: str, bounds: NumericRange, values: Any) -> None:
        extremes = pc.min_max(values)
        sides = (
            (
                "below_min",
                bounds.min,
                _arrow.scalar(extremes["min"]),
                pc.less,
                "below the minimum",
                "lowest",
            ),
            (
                "above_max",
                bounds.max,
                _arrow.scalar(extremes["max"]),
                pc.greater,
                "above the maximum",
                "highest",
            ),
        )
        for rule, bound, seen, compare, words, extreme in sides:
            if bound is None:
                continue
            if seen is None or not _beyond(rule, seen, bound):
                self._pass(rule, name)
                continue
            mask = compare(values, bound)
            count = _arrow.count_true(mask)
            self._fail(
                rule,
                name,
                f"{name}: {_count(count, 'value')} {words} {bound} ({extreme} {seen})",
                observed=seen,
                expected=bound,
                rows=count,
                mask=mask,
            )

    def _domain(self, name: str, domain: tuple[DomainValue, ...], values: Any) -> None:
        allowed = pa.array(list(domain))
        uniques = pc.unique(values).drop_null()
        # Compare in the domain's type (int64 or string): the column may be int8 or large_string.
        known = pc.is_in(uniques.cast(allowed.type), value_set=allowed)
        unknown = uniques.filter(pc.invert(known))
        if len(unknown) == 0:
            self._pass("unknown_category", name)
            return
        mask = pc.is_in(values, value_set=unknown)
        count = _arrow.count_true(mask)
        counts = pc.value_counts(values.filter(mask))
        pairs = sorted(
            zip(
                counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
            ),
            key=lambda pair: (-pair[1], str(pair[0])),
        )
        shown = ", ".join(f"{value!r} ({n:,})" for value, n in pairs[:5])
        more = f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""
        self._fail(
            "unknown_category",
            name,
            f"{name}: {_count(count, 'row')} outside the domain: {shown}{more}",
            observed=dict(pairs[:20]),
            expected=list(domain),
            rows=count,
            mask=mask,
        )


def _beyond(rule: str, seen: Any, bound: int | float) -> bool:
    return bool(seen < bound) if rule == "below_min" else bool(seen > bound)


def _article(logical: LogicalType) -> str:
    return f"an {logical}" if logical[0] in "aeiou" else f"a {logical}"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'s' * (number != 1)}"
