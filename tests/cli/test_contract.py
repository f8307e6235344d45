"""`keel contract infer|check|diff` as a user and a CI job run them, on the real flights data."""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.cli.conftest import Keel
from tests.contracts.support import first_half, second_half

JULY_1 = "2013-07-01T12:00:00Z"
NEW_YEAR = "2014-01-01T12:00:00Z"


@pytest.fixture
def halves(tmp_path: Path) -> tuple[Path, Path]:
    h1, h2 = tmp_path / "h1.parquet", tmp_path / "h2.parquet"
    pq.write_table(first_half(), h1)
    pq.write_table(second_half(), h2)
    return h1, h2


@pytest.fixture
def contract_file(keel: Keel, halves: tuple[Path, Path], tmp_path: Path) -> Path:
    out = tmp_path / "contracts" / "flights.yaml"
    out.parent.mkdir()
    result = keel(
        "contract",
        "infer",
        halves[0],
        "-o",
        out,
        "--key",
        "year",
        "--key",
        "month",
        "--key",
        "day",
        "--key",
        "carrier",
        "--key",
        "flight",
        "--key",
        "origin",
    )
    assert result.code == 0, result.err
    assert "wrote" in result.out
    return out


def test_infer_prints_a_reviewable_yaml_contract(keel: Keel, halves: tuple[Path, Path]) -> None:
    result = keel("contract", "infer", halves[0])
    assert result.code == 0, result.err
    assert "\nkind: keel/contract\n" in result.out
    assert "time_hour" in result.out and "freshness:" in result.out
    assert "carrier:" in result.out


def test_reference_passes_its_own_contract(
    keel: Keel, halves: tuple[Path, Path], contract_file: Path
) -> None:
    result = keel("contract", "check", halves[0], "--contract", contract_file, "--now", JULY_1)
    assert result.code == 0, result.out
    assert "0 errors" in result.out


def test_second_half_keeps_the_schema_but_reports_drift(
    keel: Keel, halves: tuple[Path, Path], contract_file: Path, tmp_path: Path
) -> None:
    junit = tmp_path / "reports" / "contract.xml"
    result = keel(
        "contract", "check", halves[1], "--contract", contract_file,
        "--now", NEW_YEAR, "--junit", junit, "--json",
    )  # fmt: skip
    assert result.code == 1
    report = result.json()
    rules = {(v["rule"], v["column"]) for v in report["violations"]}
    assert not any(rule in {"column_missing", "type_mismatch"} for rule, _ in rules)
    assert ("unknown_category", "month") in rules  # July-December are new months
    assert all(
        v["observed"] is not None and v["expected"] is not None for v in report["violations"]
    )
    suite = ET.parse(junit).getroot()
    cases = suite.findall(".//testcase")
    failures = suite.findall(".//testcase/failure")
    assert len(cases) == report["summary"]["checks"]
    assert len(failures) == report["summary"]["errors"]


def test_broken_data_fails_with_rule_and_column(
    keel: Keel, contract_file: Path, tmp_path: Path
) -> None:
    table = first_half()
    broken = table.drop_columns(["distance"])
    nulls = pc.less(pc.random(table.num_rows), 0.2)
    broken = broken.set_column(
        broken.schema.get_field_index("hour"),
        "hour",
        pc.if_else(nulls, pa.scalar(None, pa.int64()), table["hour"]),
    )
    path = tmp_path / "broken.parquet"
    pq.write_table(broken, path)
    result = keel("contract", "check", path, "--contract", contract_file, "--now", JULY_1, "--json")
    assert result.code == 1
    rules = {(v["rule"], v["column"]) for v in result.json()["violations"]}
    assert ("column_missing", "distance") in rules
    assert ("new_null_pattern", "hour") in rules
    text = keel("contract", "check", path, "--contract", contract_file, "--now", JULY_1)
    assert "column_missing" in text.out and "distance" in text.out


def test_stale_data_fails(keel: Keel, halves: tuple[Path, Path], contract_file: Path) -> None:
    result = keel("contract", "check", halves[0], "--contract", contract_file,
                  "--now", "2013-09-01T00:00:00Z", "--json")  # fmt: skip
    assert result.code == 1
    assert ("stale", "time_hour") in {(v["rule"], v["column"]) for v in result.json()["violations"]}


def test_contract_from_keel_yaml(
    keel: Keel, halves: tuple[Path, Path], contract_file: Path, tmp_path: Path
) -> None:
    assert keel("init").code == 0
    spec = tmp_path / "keel.yaml"
    spec.write_text(
        spec.read_text()
        + "data:\n  source: h1.parquet\n  timestamp: time_hour\n"
        + "  contract: contracts/flights.yaml\n"
    )
    result = keel("contract", "check", halves[0], "--now", JULY_1)
    assert result.code == 0, result.out + result.err


def test_missing_contract_says_how_to_get_one(keel: Keel, halves: tuple[Path, Path]) -> None:
    result = keel("contract", "check", halves[0])
    assert result.code == 2
    assert "no contract" in result.err and "keel contract infer" in result.err


def test_diff_marks_breaking_changes(keel: Keel, contract_file: Path, tmp_path: Path) -> None:
    narrower = tmp_path / "narrow.parquet"
    pq.write_table(first_half().drop_columns(["tailnum"]), narrower)
    new = tmp_path / "new.yaml"
    assert keel("contract", "infer", narrower, "-o", new).code == 0
    result = keel("contract", "diff", contract_file, new, "--json")
    assert result.code == 1
    changes = result.json()["changes"]
    removed = [c for c in changes if c["kind"] == "column_removed"]
    assert removed == [removed[0]] and removed[0]["column"] == "tailnum" and removed[0]["breaking"]
    same = keel("contract", "diff", contract_file, contract_file)
    assert same.code == 0 and "no schema changes" in same.out


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.csv", None, "no such file"),
        ("empty.csv", b"", "empty"),
        ("ragged.csv", b"a,b,c\n1,2,3\n4,5\n", "row"),
        ("latin1.csv", "name,city\nJos\xe9,M\xe1laga\n".encode("latin-1"), "UTF-8"),
        ("bad.csv.gz", b"\x1f\x8b\x08\x00garbage", "gzip"),
        ("header.csv", b"a,b,c\n", "header"),
    ],
)
def test_bad_input_is_one_clear_line(
    keel: Keel, tmp_path: Path, name: str, content: bytes | None, fragment: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = keel("contract", "infer", path)
    assert result.code != 0
    assert "Traceback" not in result.err
    first = result.err.splitlines()[0]
    assert first.startswith("error: ") and name in first
    assert fragment.lower() in result.err.lower()
    assert not list(tmp_path.glob("*.yaml"))


def test_gzip_csv_reads(keel: Keel, tmp_path: Path) -> None:
    path = tmp_path / "tiny.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n1,x\n2,y\n"))
    assert keel("contract", "infer", path).code == 0


def test_check_and_diff_dataset_versions(
    keel: Keel, halves: tuple[Path, Path], contract_file: Path, tmp_path: Path
) -> None:
    assert keel("init").code == 0
    first = keel("data", "snapshot", halves[0], "--json")
    assert first.code == 0, first.err
    h1 = first.json()["version"]["id"]
    h2 = keel("data", "snapshot", halves[1], "--json").json()["version"]["id"]
    short = h1.split(":")[-1][:8]

    passed = keel("contract", "check", short, "--contract", contract_file, "--now", JULY_1)
    assert passed.code == 0, passed.out + passed.err
    assert f"dataset {h1.split(':')[-1][:12]}" in passed.out

    failed = keel("contract", "check", "latest", "--contract", contract_file, "--now", NEW_YEAR)
    assert failed.code == 1
    assert f"dataset {h2.split(':')[-1][:12]}" in failed.out

    diff = keel("contract", "diff", short, "latest", "--json")
    kinds = {(c["kind"], c["column"]) for c in diff.json()["changes"]}
    assert any(column == "month" for _, column in kinds)  # the months widened
    assert not any(kind == "column_removed" for kind, _ in kinds)


def test_infer_creates_the_output_folder(
    keel: Keel, halves: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "new" / "deeper" / "contract.yaml"
    assert keel("contract", "infer", halves[0], "-o", out).code == 0
    assert out.read_text().count("kind: keel/contract") == 1
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    result = keel("contract", "infer", halves[0], "-o", blocked / "c.yaml")
    assert result.code == 2
    assert "cannot write the contract" in result.err and "Traceback" not in result.err


def test_a_missing_file_inside_a_project_says_both_what_it_is_not(keel: Keel) -> None:
    assert keel("init").code == 0
    result = keel("contract", "infer", "nonexistent")
    assert result.code == 2
    assert "no such file or folder, and not a dataset version" in result.err
    unknown = keel("contract", "infer", "abcdef12")
    assert unknown.code == 3
    assert "no dataset version id starts with abcdef12" in unknown.err
