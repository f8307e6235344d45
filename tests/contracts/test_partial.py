"""A contract judged from parts merged equals the contract judged on the whole table.

This is what lets the Spark engine check a table partition by partition: every figure a rule
needs merges exactly, and the samples are the first offending rows in the parts' order.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from itertools import pairwise

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from keel.contracts import CheckResult, Contract, check_contract
from keel.contracts import partial as partial_module
from keel.contracts.check import judge_contract
from keel.contracts.partial import ContractPartial, duplicate_keys
from tests.contracts.support import NOW, broken, reference_contract, second_half


def results_by_parts(table: pa.Table, contract: Contract, cuts: list[int]) -> list[CheckResult]:
    bounds = [0, *cuts, table.num_rows]
    merged: ContractPartial | None = None
    for part, (start, stop) in enumerate(pairwise(bounds)):
        piece = ContractPartial.of(table.slice(start, stop - start), contract, now=NOW, part=part)
        merged = piece if merged is None else merged.merge(piece)
    assert merged is not None
    report = judge_contract(
        merged, contract, now=NOW, duplicates=lambda key: duplicate_keys(table, key, 5)
    )
    assert report.rows == table.num_rows
    return list(report.results)


@pytest.mark.parametrize(
    "cuts",
    [[], [1], [50_000], [3, 40_000, 40_001, 90_000, 170_000], list(range(9_000, 170_000, 9_000))],
)
def test_parts_merged_judge_like_the_whole_table(cuts: list[int]) -> None:
    table = broken()
    contract = reference_contract()
    whole = check_contract(table, contract, now=NOW)
    failed = {(r.rule, r.column) for r in whole.results if r.status == "failed"}
    # The faults are all there, so every kind of figure is merged.
    assert {
        ("unknown_category", "month"),
        ("above_max", "month"),
        ("new_null_pattern", "distance"),
        ("type_mismatch", "sched_dep_time"),
        ("column_missing", "minute"),
        ("unexpected_column", "gate"),
        ("duplicate_key", ",".join(contract.key)),
    } <= failed
    # Messages, observed values, counts and samples, rule by rule.
    assert results_by_parts(table, contract, cuts) == list(whole.results)


def test_a_stale_table_shows_its_newest_rows_from_whichever_part_holds_them() -> None:
    table = second_half()
    contract = reference_contract()
    later = NOW + timedelta(days=30)
    whole = check_contract(table, contract, now=later)
    stale = next(r for r in whole.results if r.rule == "stale")
    assert stale.status == "failed" and stale.violation is not None
    assert stale.violation.samples  # the rows of the newest hour
    merged = ContractPartial.of(table.slice(0, 100_000), contract, now=later).merge(
        ContractPartial.of(table.slice(100_000), contract, now=later, part=1)
    )
    judged = judge_contract(
        merged, contract, now=later, duplicates=lambda key: duplicate_keys(table, key, 5)
    )
    assert list(judged.results) == list(whole.results)


def test_unknown_values_beyond_the_counted_ones_are_reported_as_at_least(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(partial_module, "MAX_UNKNOWN", 8)
    table = second_half()
    contract = reference_contract()
    columns = tuple(
        replace(c, domain=("EWR",)) if c.name == "dest" else c for c in contract.columns
    )
    contract = replace(contract, columns=columns)
    unknown = pc.sum(pc.not_equal(table["dest"], "EWR")).as_py()
    merged = ContractPartial.of(table.slice(0, 50_000), contract, now=NOW).merge(
        ContractPartial.of(table.slice(50_000), contract, now=NOW, part=1)
    )
    judged = judge_contract(
        merged, contract, now=NOW, duplicates=lambda key: duplicate_keys(table, key, 5)
    )
    result = next(r for r in judged.results if (r.rule, r.column) == ("unknown_category", "dest"))
    assert result.violation is not None
    # Every offending row is still counted; only the values' own counts stop.
    assert result.violation.rows == unknown
    assert "and at least 3 more" in result.violation.message


def test_parts_with_different_columns_or_types_do_not_merge() -> None:
    contract = reference_contract()
    table = second_half().slice(0, 100)
    with pytest.raises(ValueError, match="different columns"):
        ContractPartial.of(table, contract, now=NOW).merge(
            ContractPartial.of(table.drop_columns(["dest"]), contract, now=NOW)
        )
    as_text = table.set_column(
        table.schema.get_field_index("distance"), "distance", table["distance"].cast(pa.string())
    )
    with pytest.raises(ValueError, match="distance: holds integer in one part and string"):
        ContractPartial.of(table, contract, now=NOW).merge(
            ContractPartial.of(as_text, contract, now=NOW)
        )
