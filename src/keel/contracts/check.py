"""Hold a table against a contract and list every violation, not just the first.

The rules are judged from a `ContractPartial` (keel.contracts.partial): the figures of the
whole table, computed here in one go or on Spark per partition and merged, so both engines judge
alike. Cheap statistics decide first (null counts are free in Arrow, min/max and distinct values
are one pass each); offending rows are counted and sampled only where a bound is broken, so a
passing check costs little more than a hand-written one. `now` is an argument: freshness is
judged against the caller's clock, which makes checks reproducible and testable.

Rule ids and their severity (all errors except `unexpected_column`, whose severity the contract's
`extra_columns` sets): see `keel.contracts.report.RULES`. A nullable: false column with nulls is a
`new_null_pattern`, except a key or timestamp column, where any null is `not_nullable`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

from keel.contracts.model import (
    ColumnContract,
    Contract,
    DomainValue,
    LogicalType,
    NumericRange,
    RowBounds,
    TimestampRule,
)
from keel.contracts.partial import (
    NUMERIC,
    PARSEABLE,
    ColumnPartial,
    ContractPartial,
    DuplicateKeys,
    Samples,
    duplicate_keys,
    type_passes,
)
from keel.contracts.report import CheckResult, ContractReport, Severity, Violation
from keel.domain.duration import format_age, format_duration
from keel.domain.times import TIME_KINDS, as_utc, covers_until, render

__all__ = ["check_contract", "judge_contract"]


def check_contract(
    table: pa.Table, contract: Contract, *, now: datetime, max_samples: int = 5
) -> ContractReport:
    """Check `table` against `contract`; freshness is measured from `now` (timezone-aware).

    Never raises for bad data: every problem is a violation in the report.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware, e.g. datetime.now(UTC)")
    started = time.perf_counter()
    partial = ContractPartial.of(table, contract, now=now, max_samples=max_samples)
    return judge_contract(
        partial,
        contract,
        now=now,
        duplicates=lambda key: duplicate_keys(table, key, max_samples),
        started=started,
    )


def judge_contract(
    partial: ContractPartial,
    contract: Contract,
    *,
    now: datetime,
    duplicates: Callable[[tuple[str, ...]], DuplicateKeys],
    started: float | None = None,
) -> ContractReport:
    """The report of a table whose figures are `partial`: every rule judged as
    `check_contract` judges it. `duplicates` finds the repeated keys of the whole table; it is
    called only when the contract has a key whose columns are present and well typed.
    `started` (a `time.perf_counter()` reading) is when the check began."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware, e.g. datetime.now(UTC)")
    begun = time.perf_counter() if started is None else started
    results = _Judge(partial, contract, now, duplicates).run()
    return ContractReport(
        rows=partial.rows,
        checked_at=now,
        results=tuple(results),
        seconds=time.perf_counter() - begun,
    )


class _Judge:
    def __init__(
        self,
        partial: ContractPartial,
        contract: Contract,
        now: datetime,
        duplicates: Callable[[tuple[str, ...]], DuplicateKeys],
    ) -> None:
        self.partial = partial
        self.contract = contract
        self.now = now
        self.duplicates = duplicates
        self.rows = partial.rows
        self.results: list[CheckResult] = []
        self.found = dict(partial.schema)
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
        samples: Samples = (),
        severity: Severity = "error",
    ) -> None:
        shown = tuple(row for _, row in samples)
        violation = Violation(rule, column, message, observed, expected, rows, shown, severity)
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
        extra = [name for name, _ in self.partial.schema if name not in listed]
        if not extra:
            self._pass("unexpected_column", None)
        severity: Severity = "error" if self.contract.extra_columns == "error" else "warning"
        for name in extra:
            found = self.found[name] or "null"
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
        repeated = self.duplicates(key)
        if not repeated.rows:
            self._pass("duplicate_key", label)
            return
        first = repeated.example or {}
        shown = ", ".join(f"{name}={first.get(name)!r}" for name in key)
        message = (
            f"key ({', '.join(key)}): {_count(repeated.rows, 'row')} share their key with "
            f"another row, in {_count(repeated.keys, 'key')} "
            f"(e.g. {shown}: {repeated.example_rows} rows)"
        )
        observed = {"duplicate_rows": repeated.rows, "duplicate_keys": repeated.keys}
        violation = Violation(
            "duplicate_key", label, message, observed, "unique", repeated.rows, repeated.samples
        )
        self.results.append(CheckResult("duplicate_key", label, "failed", violation))

    def _stale(self, rule: TimestampRule) -> None:
        name = rule.column
        if name not in self.usable:
            self._skip("stale", name, "timestamp column missing or mistyped")
            return
        column = self.partial.columns[name]
        if column.found not in TIME_KINDS:
            self._skip("stale", name, "timestamp column holds only nulls")
            return
        newest = column.newest
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
            samples=column.newest_rows,
        )

    # -- column rules ------------------------------------------------------------------------

    def _column(self, column: ColumnContract) -> None:
        name = column.name
        value_rules = self._value_rules(column)
        figures = self.partial.columns.get(name)
        if figures is None:
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
        typed = self._type(column, figures)
        self._nulls(column, figures)
        if not typed:
            for rule in value_rules:
                self._skip(rule, name, "type mismatch")
            return
        self.usable.add(name)
        if column.range is not None:
            if figures.found in NUMERIC:
                self._range(column.name, column.range, figures)
            else:
                # Only nulls (Arrow's null type): no value can be out of range.
                for rule in value_rules:
                    if rule != "unknown_category":
                        self._pass(rule, name)
        if column.domain is not None:
            self._domain(column.name, column.domain, figures)

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

    def _type(self, column: ColumnContract, figures: ColumnPartial) -> bool:
        name, expected, found = column.name, column.type, figures.found
        if type_passes(found, expected):
            self._pass("type_mismatch", name)
            return True
        offending, samples, detail = figures.valid, figures.valid_rows, ""
        if found == "string" and expected in PARSEABLE:
            if figures.unparsed:
                offending, samples = figures.unparsed, figures.unparsed_rows
                detail = (
                    f"; {_count(figures.unparsed, 'value')} not {_article(expected)}, e.g. "
                    + ", ".join(repr(v) for v in figures.unparsed_examples)
                )
            else:
                detail = f"; every value reads as {_article(expected)}: was the column quoted?"
        self._fail(
            "type_mismatch",
            name,
            f"{name}: expected {expected}, found {found}{detail}",
            observed=found,
            expected=expected,
            rows=offending,
            samples=samples,
        )
        return False

    def _nulls(self, column: ColumnContract, figures: ColumnPartial) -> None:
        name = column.name
        nulls = figures.nulls
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
                    samples=figures.null_rows,
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
            samples=figures.null_rows,
        )

    def _range(self, name: str, bounds: NumericRange, figures: ColumnPartial) -> None:
        sides = (
            (
                "below_min",
                bounds.min,
                figures.low,
                figures.below,
                figures.below_rows,
                "below the minimum",
                "lowest",
            ),
            (
                "above_max",
                bounds.max,
                figures.high,
                figures.above,
                figures.above_rows,
                "above the maximum",
                "highest",
            ),
        )
        for rule, bound, seen, count, samples, words, extreme in sides:
            if bound is None:
                continue
            if seen is None or not _beyond(rule, seen, bound):
                self._pass(rule, name)
                continue
            self._fail(
                rule,
                name,
                f"{name}: {_count(count, 'value')} {words} {bound} ({extreme} {seen})",
                observed=seen,
                expected=bound,
                rows=count,
                samples=samples,
            )

    def _domain(self, name: str, domain: tuple[DomainValue, ...], figures: ColumnPartial) -> None:
        if not figures.unknown:
            self._pass("unknown_category", name)
            return
        pairs = sorted(figures.unknown_counts.items(), key=lambda pair: (-pair[1], str(pair[0])))
        shown = ", ".join(f"{value!r} ({n:,})" for value, n in pairs[:5])
        more = ""
        if len(pairs) > 5 or figures.unknown_overflow:
            more = f" and {'at least ' if figures.unknown_overflow else ''}{len(pairs) - 5} more"
        self._fail(
            "unknown_category",
            name,
            f"{name}: {_count(figures.unknown, 'row')} outside the domain: {shown}{more}",
            observed=dict(pairs[:20]),
            expected=list(domain),
            rows=figures.unknown,
            samples=figures.unknown_rows,
        )


def _beyond(rule: str, seen: Any, bound: int | float) -> bool:
    return bool(seen < bound) if rule == "below_min" else bool(seen > bound)


def _article(logical: LogicalType) -> str:
    return f"an {logical}" if logical[0] in "aeiou" else f"a {logical}"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'s' * (number != 1)}"
