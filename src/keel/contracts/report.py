"""The outcome of a contract check: every rule tried on every column, and what broke.

A `ContractReport` lists one `CheckResult` per rule per column (passed, failed or skipped, e.g.
range rules on a column that is missing). Failed results carry a `Violation`: the rule id, the
column, observed against expected, how many rows offend and a few of them as plain dicts.
`report_to_junit` renders the same results for CI systems (GitHub, GitLab, Jenkins).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final, Literal

from keel.domain.duration import format_duration
from keel.reports.junit import JUnitCase, JUnitSuite, junit_xml

__all__ = [
    "RULES",
    "CheckResult",
    "ContractReport",
    "Severity",
    "Status",
    "Violation",
    "report_to_junit",
    "to_plain",
]

#: Stable rule ids: scripts and CI filters match on them, so they never change meaning.
RULES: Final = (
    "row_count",
    "column_missing",
    "type_mismatch",
    "not_nullable",
    "new_null_pattern",
    "null_rate",
    "below_min",
    "above_max",
    "unknown_category",
    "unexpected_column",
    "duplicate_key",
    "stale",
)

Severity = Literal["error", "warning"]
Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: where, what was seen against what the contract allows, and examples.

    `rows` counts the offending rows; `samples` holds a few of them as plain dicts.
    """

    rule: str
    column: str | None
    message: str
    observed: Any
    expected: Any
    rows: int = 0
    samples: tuple[dict[str, Any], ...] = ()
    severity: Severity = "error"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One rule tried on one column (`column` is None for table-level rules such as row_count)."""

    rule: str
    column: str | None
    status: Status
    violation: Violation | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ContractReport:
    """Every check of one table against one contract. `ok` is False when any error was found."""

    rows: int
    checked_at: datetime
    results: tuple[CheckResult, ...]
    seconds: float = 0.0

    @property
    def violations(self) -> tuple[Violation, ...]:
        return tuple(r.violation for r in self.results if r.violation is not None)

    @property
    def errors(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.severity == "error")

    @property
    def warnings(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        """One line for humans, e.g. `166158 rows, 94 checks: 2 errors, 1 warning`."""
        counts = (
            (self.rows, "row"),
            (len(self.results), "check"),
            (len(self.errors), "error"),
            (len(self.warnings), "warning"),
        )
        rows, checks, errors, warnings = (f"{n:,} {noun}{'s' * (n != 1)}" for n, noun in counts)
        return f"{rows}, {checks}: {errors}, {warnings}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (what `keel contract check --json` prints)."""
        return {
            "ok": self.ok,
            "rows": self.rows,
            "checked_at": self.checked_at.isoformat(),
            "seconds": round(self.seconds, 6),
            "summary": {
                "checks": len(self.results),
                "failed": sum(r.status == "failed" for r in self.results),
                "skipped": sum(r.status == "skipped" for r in self.results),
                "errors": len(self.errors),
                "warnings": len(self.warnings),
            },
            "violations": [
                {
                    "rule": v.rule,
                    "column": v.column,
                    "severity": v.severity,
                    "message": v.message,
                    "observed": to_plain(v.observed),
                    "expected": to_plain(v.expected),
                    "rows": v.rows,
                    "samples": to_plain(list(v.samples)),
                }
                for v in self.violations
            ],
            "checks": [
                {"rule": r.rule, "column": r.column, "status": r.status, "reason": r.reason}
                for r in self.results
            ],
        }


def to_plain(value: Any) -> Any:
    """JSON-safe form of observed values and sample rows (dates as ISO-8601, durations as 36h)."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value) if value.total_seconds() > 0 else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def report_to_junit(report: ContractReport, *, suite: str = "keel contract") -> str:
    """JUnit XML with one testcase per rule per column; errors are failures, skips are skipped.

    Warnings pass (a CI job should not fail on them) and are shown in the case's system-out.
    """
    cases = []
    for result in report.results:
        violation = result.violation
        failure = violation if violation is not None and violation.severity == "error" else None
        warning = violation if failure is None else None
        cases.append(
            JUnitCase(
                name=f"{result.column or 'table'}: {result.rule}",
                classname="keel.contract",
                failure=None if failure is None else failure.message,
                failure_type=result.rule,
                details="" if failure is None else _details(failure),
                skipped=(result.reason or "") if result.status == "skipped" else None,
                output=""
                if warning is None
                else f"warning: {warning.message}\n{_details(warning)}",
            )
        )
    return junit_xml(
        JUnitSuite(
            suite,
            cases,
            timestamp=report.checked_at,
            seconds=report.seconds,
            properties={"rows": str(report.rows)},
        )
    )


def _details(violation: Violation) -> str:
    lines = [
        f"rule: {violation.rule}",
        f"column: {violation.column or '(table)'}",
        f"observed: {to_plain(violation.observed)}",
        f"expected: {to_plain(violation.expected)}",
        f"offending rows: {violation.rows}",
    ]
    lines += [f"sample: {to_plain(sample)}" for sample in violation.samples]
    return "\n".join(lines)
