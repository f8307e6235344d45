"""Acceptance on real data: a contract inferred from January-June flights, held against the rest."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from keel.contracts import (
    ContractReport,
    check_contract,
    diff_contracts,
    dump_contract,
    infer_contract,
    load_contract,
    read_contract,
    report_to_junit,
    write_contract,
)
from keel.data import read_table
from tests.contracts.support import (
    KEY,
    NOW,
    NOW_JULY,
    first_half,
    flights,
    parse_xml,
    reference_contract,
    second_half,
)

SCHEMA_RULES = {"column_missing", "type_mismatch", "unexpected_column"}


def _failed(report: ContractReport) -> set[tuple[str, str | None]]:
    return {(v.rule, v.column) for v in report.violations}


def test_the_reference_passes_its_own_contract() -> None:
    report = check_contract(first_half(), reference_contract(), now=NOW_JULY)
    assert report.ok, [v.message for v in report.violations]
    assert report.violations == ()


def test_inferred_contract_reads_like_the_data() -> None:
    contract = reference_contract()
    assert contract.timestamp is not None
    assert contract.timestamp.column == "time_hour"
    assert contract.timestamp.freshness == timedelta(hours=36)  # hourly data, the floor
    assert contract.key == KEY
    by_name = {column.name: column for column in contract}
    assert by_name["time_hour"].type == "timestamp"
    assert by_name["carrier"].domain is not None and "UA" in by_name["carrier"].domain
    assert by_name["origin"].domain == ("EWR", "JFK", "LGA")
    assert by_name["distance"].nullable is False
    assert by_name["arr_delay"].nullable is True
    assert by_name["arr_delay"].max_null_rate is not None
    assert 0.033 < by_name["arr_delay"].max_null_rate < 0.06
    assert by_name["tailnum"].domain is None  # thousands of planes: not a category
    assert contract.rows is not None and contract.rows.contains(first_half().num_rows)


def test_second_half_keeps_the_schema_and_reports_drift_beyond_bounds() -> None:
    second = second_half()
    report = check_contract(second, reference_contract(), now=NOW)
    assert not SCHEMA_RULES & {v.rule for v in report.violations}
    # The seasons move: months 7-12, and one 1 a.m. departure (hour 1, scheduled 01:06).
    assert _failed(report) == {
        ("above_max", "month"),
        ("unknown_category", "month"),
        ("below_min", "sched_dep_time"),
        ("below_min", "hour"),
        ("unknown_category", "hour"),
    }
    month = next(v for v in report.violations if v.rule == "above_max")
    assert month.observed == 12
    assert month.expected == 7
    assert month.rows == pc.sum(pc.greater(second["month"], 7)).as_py()
    assert month.samples and all(row["month"] > 7 for row in month.samples)
    hour = next(v for v in report.violations if v.rule == "unknown_category" and v.column == "hour")
    assert hour.observed == {1: 1}
    assert hour.samples[0]["sched_dep_time"] == 106


def test_a_dropped_column_fails_as_column_missing() -> None:
    report = check_contract(second_half().drop_columns(["distance"]), reference_contract(), now=NOW)
    missing = [v for v in report.violations if v.rule == "column_missing"]
    assert [(v.column, v.expected) for v in missing] == [("distance", "integer")]
    skipped = {r.rule for r in report.results if r.column == "distance" and r.status == "skipped"}
    assert skipped == {"type_mismatch", "new_null_pattern", "below_min", "above_max"}


def test_a_retyped_column_fails_as_type_mismatch() -> None:
    table = second_half()
    position = table.column_names.index("distance")
    retyped = table.set_column(position, "distance", table["distance"].cast(pa.string()))
    report = check_contract(retyped, reference_contract(), now=NOW)
    mismatch = [v for v in report.violations if v.rule == "type_mismatch"]
    assert [(v.column, v.observed, v.expected) for v in mismatch] == [
        ("distance", "string", "integer")
    ]
    assert "every value reads as an integer" in mismatch[0].message
    assert mismatch[0].rows == table.num_rows


def test_a_mixed_type_csv_column_is_reported_with_its_bad_values(tmp_path: Path) -> None:
    sample = second_half().slice(0, 2000)
    path = tmp_path / "flights.csv"
    pcsv.write_csv(sample, path)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    column = header.index('"distance"')
    fields = lines[1500].split(",")
    fields[column] = "unknown"
    lines[1500] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")

    report = check_contract(read_table(path), reference_contract(), now=NOW)
    (mismatch,) = [v for v in report.violations if v.rule == "type_mismatch"]
    assert mismatch.column == "distance"
    assert mismatch.rows == 1
    assert "'unknown'" in mismatch.message
    assert mismatch.samples[0]["distance"] == "unknown"


def test_twenty_percent_nulls_in_a_complete_feature_is_a_new_null_pattern() -> None:
    table = second_half()
    every_fifth = pa.array([row % 5 == 0 for row in range(table.num_rows)])
    injected = pc.if_else(every_fifth, pa.scalar(None, pa.int64()), table["distance"])
    position = table.column_names.index("distance")
    report = check_contract(
        table.set_column(position, "distance", injected), reference_contract(), now=NOW
    )
    (nulls,) = [v for v in report.violations if v.rule == "new_null_pattern"]
    assert nulls.column == "distance"
    assert nulls.rows == injected.null_count
    assert 0.19 < nulls.observed["null_rate"] < 0.21
    assert all(row["distance"] is None for row in nulls.samples)


def test_twenty_percent_nulls_in_a_nullable_feature_breaks_its_null_rate() -> None:
    table = second_half()
    every_fifth = pa.array([row % 5 == 0 for row in range(table.num_rows)])
    injected = pc.if_else(every_fifth, pa.scalar(None, pa.int64()), table["arr_delay"])
    position = table.column_names.index("arr_delay")
    report = check_contract(
        table.set_column(position, "arr_delay", injected), reference_contract(), now=NOW
    )
    (rate,) = [v for v in report.violations if v.rule == "null_rate"]
    assert rate.column == "arr_delay"
    assert rate.observed["null_rate"] > rate.expected["max"]


def test_timestamps_shifted_into_the_past_are_stale() -> None:
    table = second_half()
    position = table.column_names.index("time_hour")
    shifted = pc.subtract(table["time_hour"], pa.scalar(timedelta(days=3), pa.duration("s")))
    report = check_contract(
        table.set_column(position, "time_hour", shifted), reference_contract(), now=NOW
    )
    (stale,) = [v for v in report.violations if v.rule == "stale"]
    assert stale.column == "time_hour"
    assert stale.expected == {"freshness": "36h"}
    assert stale.observed["age"] == "3d 8h"
    # Unshifted, the same clock finds the data fresh.
    fresh = check_contract(table, reference_contract(), now=NOW)
    assert "stale" not in {v.rule for v in fresh.violations}


def test_junit_output_parses_with_one_case_per_rule_and_column() -> None:
    report = check_contract(second_half().drop_columns(["distance"]), reference_contract(), now=NOW)
    root = parse_xml(report_to_junit(report))
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    failures = [case for case in cases if case.find("failure") is not None]
    assert len(cases) == len(report.results) == int(suite.get("tests", "0"))
    assert len(failures) == len(report.errors) == int(suite.get("failures", "0")) == 6
    names = {case.get("name") for case in failures}
    assert "distance: column_missing" in names
    assert "month: above_max" in names
    failure = next(c for c in failures if c.get("name") == "month: above_max").find("failure")
    assert failure is not None
    assert failure.get("type") == "above_max"
    assert "above the maximum 7" in failure.get("message", "")
    assert "sample: {" in (failure.text or "")
    skipped = [case for case in cases if case.find("skipped") is not None]
    assert len(skipped) == int(suite.get("skipped", "0")) == 4


def test_contract_yaml_round_trips(tmp_path: Path) -> None:
    contract = reference_contract()
    text = dump_contract(contract)
    assert "kind: keel/contract" in text
    assert "timestamp: {column: time_hour, freshness: 36h}" in text
    assert load_contract(text) == contract
    path = tmp_path / "flights.contract.yaml"
    write_contract(contract, path)
    assert read_contract(path) == contract


def test_diff_marks_a_removed_column_breaking_and_a_wider_domain_not() -> None:
    old = reference_contract()
    whole_year = infer_contract(flights().drop_columns(["distance"]), key=KEY)
    changes = {(c.kind, c.column): c for c in diff_contracts(old, whole_year)}
    removed = changes[("column_removed", "distance")]
    assert removed.breaking
    widened = changes[("domain_widened", "month")]
    assert not widened.breaking
    assert "7" in widened.reason
    assert not any(c.breaking for c in changes.values() if c is not removed)


def test_a_missing_timestamp_column_fails_and_freshness_is_skipped() -> None:
    report = check_contract(
        second_half().drop_columns(["time_hour"]), reference_contract(), now=NOW
    )
    assert ("column_missing", "time_hour") in _failed(report)
    (stale,) = [r for r in report.results if r.rule == "stale"]
    assert (stale.status, stale.reason) == ("skipped", "timestamp column missing or mistyped")
