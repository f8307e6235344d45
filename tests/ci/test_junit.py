"""JUnit reports: what keel writes reads back the same (in keel and in any JUnit reader), and
`keel ci summary` turns reports into the Markdown a CI job summary shows."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keel.errors import DataError
from keel.reports.junit import JUnitCase, JUnitSuite, junit_xml, read_junit, write_junit
from tests.fixtures.cli import Keel

SUITE = JUnitSuite(
    "keel smoke-test flights",
    [
        JUnitCase("sample", "keel.smoke", 0.5, output="2,000 rows"),
        JUnitCase("train", "keel.smoke", 1.25, failure="ValueError: boom", details="line 3"),
        JUnitCase("metrics", "keel.smoke", skipped="not run: step 'train' failed"),
    ],
    timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    properties={"rows": "2000"},
)


def test_a_suite_reads_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "smoke.xml"
    write_junit(path, SUITE)

    (suite,) = read_junit(path)
    assert suite.name == SUITE.name
    assert [(c.name, c.status) for c in suite.cases] == [
        ("sample", "passed"),
        ("train", "failed"),
        ("metrics", "skipped"),
    ]
    assert suite.cases[1].failure == "ValueError: boom" and suite.cases[1].details == "line 3"
    assert suite.seconds == pytest.approx(1.75)
    root = ET.parse(path).getroot()
    counts = {key: root.get(key) for key in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "3", "failures": "1", "errors": "0", "skipped": "1"}
    assert root.find("testsuite/properties/property[@name='rows']").get("value") == "2000"  # type: ignore[union-attr]
    assert [p.name for p in path.parent.iterdir()] == ["smoke.xml"]  # the temp file is gone


def test_characters_xml_cannot_hold_are_replaced_not_fatal() -> None:
    suite = JUnitSuite(
        "s", [JUnitCase("bell\x07", "c", failure="nul \x00 here", details="\x1b[31m")]
    )
    root = ET.fromstring(junit_xml(suite))
    case = root.find("testsuite/testcase")
    assert case is not None and case.get("name") == "bell\ufffd"
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "nul \ufffd here"


def test_a_file_that_is_not_junit_is_a_data_error(tmp_path: Path) -> None:
    html = tmp_path / "report.xml"
    html.write_text("<html><body/></html>")
    with pytest.raises(DataError, match="not a JUnit XML file"):
        read_junit(html)
    broken = tmp_path / "broken.xml"
    broken.write_text("<testsuites>")
    with pytest.raises(DataError, match=r"broken\.xml"):
        read_junit(broken)


def test_summary_shows_each_suite_and_names_the_failures(keel: Keel, tmp_path: Path) -> None:
    write_junit(tmp_path / "reports" / "smoke.xml", SUITE)
    write_junit(
        tmp_path / "reports" / "contract.xml",
        JUnitSuite("keel contract raw.yaml", [JUnitCase("distance: below_min", "keel.contract")]),
    )

    result = keel("ci", "summary", tmp_path / "reports")

    assert result.code == 0
    lines = result.out.splitlines()
    assert "| :white_check_mark: | keel contract raw.yaml | 1 | 0 | 0 |" in lines
    assert "| :x: | keel smoke-test flights | 1 | 1 | 1 |" in lines
    assert "- **train** (keel smoke-test flights): ValueError: boom" in lines


def test_summary_of_a_folder_no_step_created_says_so(keel: Keel, tmp_path: Path) -> None:
    result = keel("ci", "summary", tmp_path / "reports")
    assert result.code == 0
    assert "no JUnit reports were written" in result.out


def test_summary_of_a_missing_file_is_an_error(keel: Keel, tmp_path: Path) -> None:
    result = keel("ci", "summary", tmp_path / "smoke.xml", "--json")
    assert result.code == 2
    assert "smoke.xml" in result.json()["error"]["message"]
