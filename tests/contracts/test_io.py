"""The contract file: readable YAML that round-trips, and errors that name the key path."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from keel.contracts import (
    ColumnContract,
    Contract,
    NumericRange,
    TimestampRule,
    dump_contract,
    load_contract,
    read_contract,
)
from keel.errors import ConfigError, NotFound

VALID = """\
kind: keel/contract
version: 1
rows: {min: 10, max: 20}
key: [id]
timestamp: {column: ts, freshness: 36h}
columns:
  id: {type: integer, nullable: false}
  ts: {type: timestamp}
  dep_delay:
    type: float
    null_rate: {max: 0.05}
    range: {min: -60, max: 1500.5}
  code:
    type: string
    domain: ["01", "NA", "yes"]
"""


def _problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_contract(text, source="c.yaml")
    assert str(caught.value).startswith("c.yaml: ")
    return caught.value.problems


def test_a_hand_written_contract_loads_with_defaults() -> None:
    contract = load_contract(VALID)
    assert contract.key == ("id",)
    assert contract.timestamp == TimestampRule("ts", timedelta(hours=36))
    assert contract.extra_columns == "warn"
    delay = contract.column("dep_delay")
    assert delay == ColumnContract(
        "dep_delay", "float", nullable=True, max_null_rate=0.05, range=NumericRange(-60, 1500.5)
    )
    code = contract.column("code")
    assert code is not None
    assert code.domain == ("01", "NA", "yes")


def test_dump_quotes_values_yaml_would_misread_and_round_trips() -> None:
    contract = load_contract(VALID)
    text = dump_contract(contract)
    assert "domain: ['01', NA, 'yes']" in text
    assert load_contract(text) == contract


def test_a_wrong_value_names_its_key_path() -> None:
    text = VALID.replace("min: -60", "min: x")
    assert _problems(text) == [("columns.dep_delay.range.min", "expected a number, got 'x'")]
    with pytest.raises(ConfigError, match=r"columns\.dep_delay\.range\.min: expected a number"):
        load_contract(text)


def test_every_problem_is_listed_at_once() -> None:
    text = (
        VALID.replace("nullable: false", "nullable: maybe")
        .replace("max: 0.05", "max: 5")
        .replace("36h", "soon")
        .replace('"01", ', "1, ")
        .replace("type: timestamp", "type: datetime")
    )
    problems = dict(_problems(text))
    assert problems["columns.id.nullable"] == "expected true or false, got 'maybe'"
    assert problems["columns.dep_delay.null_rate.max"] == "expected a rate between 0 and 1, got 5"
    assert problems["timestamp.freshness"].startswith("expected a duration like 200ms, 30s")
    assert problems["columns.code.domain[0]"] == "expected a string, got 1 (quote it)"
    assert problems["columns.ts.type"].startswith("expected one of integer, float, string")


def test_unknown_keys_are_typos_not_silently_ignored() -> None:
    problems = _problems(VALID.replace("null_rate:", "nul_rate:"))
    assert problems == [
        (
            "columns.dep_delay.nul_rate",
            "unknown key (expected one of type, nullable, null_rate, range, domain)",
        )
    ]


def test_references_to_unknown_or_unsuitable_columns() -> None:
    problems = dict(_problems(VALID.replace("key: [id]", "key: [id, nope]")))
    assert problems == {"key[1]": "'nope' is not a column of the contract"}
    problems = dict(_problems(VALID.replace("column: ts", "column: id")))
    assert problems == {"timestamp.column": "'id' is integer, not a timestamp"}
    problems = dict(_problems(VALID.replace("type: string", "type: boolean")))
    assert problems == {
        "columns.code.domain": "a domain needs a string or integer column, not boolean"
    }


def test_an_inverted_range_is_refused() -> None:
    assert _problems(VALID.replace("min: -60", "min: 2000")) == [
        ("columns.dep_delay.range", "min 2000 is above max 1500.5")
    ]


def test_unknown_version_and_kind_are_refused_clearly() -> None:
    with pytest.raises(ConfigError, match="contract format version 2 is not supported") as caught:
        load_contract(VALID.replace("version: 1", "version: 2"))
    assert caught.value.hint == "upgrade keel to read newer contracts"
    with pytest.raises(ConfigError, match="kind: expected 'keel/contract', got 'keel/policy'"):
        load_contract(VALID.replace("keel/contract", "keel/policy"))


def test_broken_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError, match="not valid YAML at line 3"):
        load_contract("kind: keel/contract\nversion: 1\ncolumns: {a: [}\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_contract("- just\n- a list\n")


def test_reading_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no such contract file") as caught:
        read_contract(tmp_path / "contract.yaml")
    assert caught.value.hint is not None and "keel contract infer" in caught.value.hint


def test_a_contract_needs_columns() -> None:
    assert _problems("kind: keel/contract\nversion: 1\n") == [
        ("columns", "expected a mapping of column names, got nothing")
    ]


def test_contract_lookup_helpers() -> None:
    contract = Contract(columns=(ColumnContract("a", "integer"),))
    assert contract.names == ("a",)
    assert contract.column("b") is None
    assert [column.name for column in contract] == ["a"]
