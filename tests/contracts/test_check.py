"""Each rule on a small table: when it fires, what it reports, and the report's renderings."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from keel.contracts import (
    RULES,
    ColumnContract,
    Contract,
    ContractReport,
    LogicalType,
    NumericRange,
    RowBounds,
    TimestampRule,
    Violation,
    check_contract,
    report_to_junit,
)
from tests.contracts.support import parse_xml

NOW = datetime(2024, 1, 2, tzinfo=UTC)


def _contract(*columns: ColumnContract, **table_rules: object) -> Contract:
    return Contract(columns=columns, **table_rules)  # type: ignore[arg-type]


def _only(report: ContractReport, rule: str) -> Violation:
    (violation,) = [v for v in report.violations if v.rule == rule]
    return violation


def test_every_reported_rule_id_is_a_known_one() -> None:
    table = pa.table({"a": [1, None, 300], "extra": ["x", "y", "z"]})
    contract = _contract(
        ColumnContract("a", "integer", nullable=False, range=NumericRange(0, 100), domain=(1, 2)),
        ColumnContract("gone", "string"),
        rows=RowBounds(5, 10),
    )
    report = check_contract(table, contract, now=NOW)
    assert {v.rule for v in report.violations} <= set(RULES)
    assert {v.rule for v in report.violations} == {
        "row_count",
        "new_null_pattern",
        "above_max",
        "unknown_category",
        "column_missing",
        "unexpected_column",
    }


def test_range_violations_count_rows_and_show_samples() -> None:
    table = pa.table({"x": [-5, 1, 2, 50, 60], "id": [1, 2, 3, 4, 5]})
    contract = _contract(
        ColumnContract("x", "integer", range=NumericRange(0, 10)), ColumnContract("id", "integer")
    )
    report = check_contract(table, contract, now=NOW)
    low = _only(report, "below_min")
    high = _only(report, "above_max")
    assert (low.rows, low.observed, low.expected) == (1, -5, 0)
    assert low.message == "x: 1 value below the minimum 0 (lowest -5)"
    assert high.rows == 2
    assert [s["id"] for s in high.samples] == [4, 5]


def test_unknown_categories_are_counted_by_value() -> None:
    table = pa.table({"c": ["a", "b", "z", "z", "y", None]})
    report = check_contract(
        table, _contract(ColumnContract("c", "string", domain=("a", "b"))), now=NOW
    )
    unknown = _only(report, "unknown_category")
    assert unknown.observed == {"z": 2, "y": 1}
    assert unknown.rows == 3
    assert "'z' (2), 'y' (1)" in unknown.message


def test_domains_compare_across_integer_widths_and_dictionary_columns() -> None:
    table = pa.table(
        {
            "small": pa.array([1, 2, 9], pa.int8()),
            "coded": pa.array(["a", "b", "a"]).dictionary_encode(),
        }
    )
    contract = _contract(
        ColumnContract("small", "integer", domain=(1, 2)),
        ColumnContract("coded", "string", domain=("a", "b")),
    )
    report = check_contract(table, contract, now=NOW)
    assert [(v.rule, v.column) for v in report.violations] == [("unknown_category", "small")]


def test_nulls_in_a_key_column_are_not_nullable_elsewhere_a_new_null_pattern() -> None:
    table = pa.table({"id": [1, None, 3], "f": [None, 2.0, 3.0]})
    contract = _contract(
        ColumnContract("id", "integer", nullable=False),
        ColumnContract("f", "float", nullable=False),
        key=("id",),
    )
    report = check_contract(table, contract, now=NOW)
    assert {(v.rule, v.column) for v in report.violations} == {
        ("not_nullable", "id"),
        ("new_null_pattern", "f"),
    }


def test_null_rate_above_the_bound() -> None:
    table = pa.table({"f": [None, None, 1.0, 2.0]})
    contract = _contract(ColumnContract("f", "float", max_null_rate=0.25))
    violation = _only(check_contract(table, contract, now=NOW), "null_rate")
    assert violation.observed == {"nulls": 2, "null_rate": 0.5}
    assert violation.expected == {"max": 0.25}


def test_duplicate_keys_are_counted_and_sampled() -> None:
    table = pa.table({"a": [1, 1, 2, 2, 2, 3], "b": ["x", "x", "y", "y", "y", "z"], "n": range(6)})
    contract = _contract(
        ColumnContract("a", "integer"),
        ColumnContract("b", "string"),
        ColumnContract("n", "integer"),
        key=("a", "b"),
    )
    duplicate = _only(check_contract(table, contract, now=NOW), "duplicate_key")
    assert duplicate.column == "a,b"
    assert duplicate.rows == 5
    assert duplicate.observed == {"duplicate_rows": 5, "duplicate_keys": 2}
    assert {(s["a"], s["b"]) for s in duplicate.samples} <= {(1, "x"), (2, "y")}
    assert len(duplicate.samples) == 5


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        (pa.array([1, 2, 2**62, None]), "integer"),  # too wide to pack: grouped instead
        (pa.array(["a", "b", None, "c"]), "string"),
        (pa.array([datetime(2024, 1, d) for d in (1, 2, 3, 4)], pa.timestamp("ns")), "timestamp"),
        (pa.array([date(2024, 1, d) for d in (1, 2, 3, 4)]), "date"),
    ],
)
def test_unique_keys_of_any_type_pass(key: pa.Array, kind: LogicalType) -> None:
    table = pa.table({"k": key, "other": [5, 5, 7, 8]})
    contract = _contract(
        ColumnContract("k", kind), ColumnContract("other", "integer"), key=("k", "other")
    )
    report = check_contract(table, contract, now=NOW)
    assert report.ok, report.violations


def test_stale_data_and_missing_timestamps() -> None:
    times = pa.array([datetime(2024, 1, 1, h) for h in range(3)], pa.timestamp("ns"))
    contract = _contract(
        ColumnContract("ts", "timestamp"),
        timestamp=TimestampRule("ts", timedelta(hours=12)),
    )
    fresh = check_contract(
        pa.table({"ts": times}), contract, now=datetime(2024, 1, 1, 14, tzinfo=UTC)
    )
    assert fresh.ok
    stale = _only(check_contract(pa.table({"ts": times}), contract, now=NOW), "stale")
    assert stale.observed["age"] == "22h"
    assert stale.samples[0]["ts"] == datetime(2024, 1, 1, 2)
    empty = pa.table({"ts": pa.array([None, None], pa.timestamp("s"))})
    assert (
        "no timestamps at all" in _only(check_contract(empty, contract, now=NOW), "stale").message
    )
    missing = check_contract(pa.table({"x": [1]}), contract, now=NOW)
    assert [r.status for r in missing.results if r.rule == "stale"] == ["skipped"]


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_contract(
            pa.table({"a": [1]}),
            _contract(ColumnContract("a", "integer")),
            now=datetime(2024, 1, 1),
        )


def test_compatible_types_pass_and_strings_that_are_not_numbers_are_named() -> None:
    table = pa.table({"f": [1, 2], "empty": pa.nulls(2), "n": ["1", "two"]})
    contract = _contract(
        ColumnContract("f", "float"),
        ColumnContract("empty", "date"),
        ColumnContract("n", "integer"),
    )
    report = check_contract(table, contract, now=NOW)
    mismatch = _only(report, "type_mismatch")
    assert (
        mismatch.message == "n: expected integer, found string; 1 value not an integer, e.g. 'two'"
    )
    assert mismatch.samples == ({"f": 2, "empty": None, "n": "two"},)


@pytest.mark.parametrize(("policy", "severity"), [("warn", "warning"), ("error", "error")])
def test_extra_columns_follow_the_contract_policy(policy: str, severity: str) -> None:
    contract = Contract(columns=(ColumnContract("a", "integer"),), extra_columns=policy)  # type: ignore[arg-type]
    report = check_contract(pa.table({"a": [1], "b": ["x"]}), contract, now=NOW)
    extra = _only(report, "unexpected_column")
    assert (extra.column, extra.severity) == ("b", severity)
    assert report.ok is (severity == "warning")
    allowed = Contract(columns=(ColumnContract("a", "integer"),), extra_columns="allow")
    assert check_contract(pa.table({"a": [1], "b": ["x"]}), allowed, now=NOW).violations == ()


def test_report_to_dict_is_json() -> None:
    table = pa.table(
        {"ts": pa.array([datetime(2020, 1, 1)], pa.timestamp("s")), "x": [float("inf")]}
    )
    contract = _contract(
        ColumnContract("ts", "timestamp"),
        ColumnContract("x", "float", range=NumericRange(0, 1)),
        timestamp=TimestampRule("ts", timedelta(days=1)),
    )
    document = check_contract(table, contract, now=NOW).to_dict()
    text = json.dumps(document, allow_nan=False)
    assert json.loads(text)["summary"]["errors"] == 2


def test_junit_is_well_formed_even_with_control_characters_in_names_and_values() -> None:
    table = pa.table({"s\x01": ["ok", 'bad\x00\x1b<&>"value']})
    contract = _contract(ColumnContract("s\x01", "string", domain=("ok",)))
    report = check_contract(table, contract, now=NOW)
    xml = report_to_junit(report)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = parse_xml(xml)
    case = root.find("testsuite/testcase[@name='s\ufffd: unknown_category']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    assert "<&>" in failure.get("message", "")


def test_junit_shows_warnings_without_failing() -> None:
    report = check_contract(
        pa.table({"a": [1], "b": [2]}), Contract(columns=(ColumnContract("a", "integer"),)), now=NOW
    )
    root = parse_xml(report_to_junit(report, suite="orders"))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("name"), suite.get("failures")) == ("orders", "0")
    out = root.find("testsuite/testcase[@name='b: unexpected_column']/system-out")
    assert out is not None
    assert (out.text or "").startswith("warning: b: column is not in the contract")


def test_summary_line() -> None:
    report = check_contract(
        pa.table({"a": [1]}), _contract(ColumnContract("a", "integer")), now=NOW
    )
    assert report.summary() == "1 row, 3 checks: 0 errors, 0 warnings"


@pytest.mark.parametrize(
    ("kind", "values", "bad"),
    [
        ("float", ["1.5", "-2e3", "NaN", "n/a"], "'n/a'"),
        ("boolean", ["true", "FALSE", "0", "maybe"], "'maybe'"),
        ("timestamp", ["2013-01-01T05:00:00Z", "2013-01-01 05:00", "yesterday"], "'yesterday'"),
        ("date", ["2013-01-01", "01/02/2013"], "'01/02/2013'"),
    ],
)
def test_strings_that_do_not_read_as_the_expected_type_are_named(
    kind: LogicalType, values: list[str], bad: str
) -> None:
    report = check_contract(pa.table({"v": values}), _contract(ColumnContract("v", kind)), now=NOW)
    mismatch = _only(report, "type_mismatch")
    assert mismatch.rows == 1
    assert mismatch.message.endswith(f"e.g. {bad}")


def test_an_all_null_column_passes_its_value_rules() -> None:
    column = ColumnContract("x", "integer", range=NumericRange(0, 1), domain=(1,))
    report = check_contract(pa.table({"x": pa.nulls(3)}), _contract(column), now=NOW)
    assert [(r.rule, r.status) for r in report.results if r.column == "x"] == [
        ("column_missing", "passed"),
        ("type_mismatch", "passed"),
        ("below_min", "passed"),
        ("above_max", "passed"),
        ("unknown_category", "passed"),
    ]


def test_duplicate_keys_are_found_across_chunks() -> None:
    table = pa.concat_tables(
        [pa.table({"k": ["a", "b"], "n": [1, 2]}), pa.table({"k": ["c", "b"], "n": [3, 2]})]
    )
    assert table["k"].num_chunks == 2
    contract = _contract(
        ColumnContract("k", "string"), ColumnContract("n", "integer"), key=("k", "n")
    )
    duplicate = _only(check_contract(table, contract, now=NOW), "duplicate_key")
    assert duplicate.rows == 2
    assert (
        duplicate.message
        == "key (k, n): 2 rows share their key with another row, in 1 key (e.g. k='b', n=2: 2 rows)"
    )
