"""JUnit XML: the test-report format every CI system reads (GitHub, GitLab, Jenkins).

keel's checks (data contracts, the smoke test, the inference contract test) describe their
results as one `JUnitSuite` of `JUnitCase`s; `junit_xml` renders it, `write_junit` writes it
atomically (a CI job never picks up half a report) and `read_junit` reads reports back for
`keel ci summary`. A failed case is a failure (the check said no), never an error: errors in
JUnit mean the test itself broke.
"""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from keel.errors import DataError

__all__ = ["JUnitCase", "JUnitSuite", "junit_xml", "read_junit", "write_junit", "xml_text"]

# XML 1.0 cannot carry these even escaped; sample values from real data sometimes hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """`text` with the characters XML 1.0 cannot hold replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


@dataclass(frozen=True, slots=True)
class JUnitCase:
    """One check. `failure` is the one-line reason it failed (None: passed or skipped);
    `details` the evidence under it; `skipped` the reason it did not run; `output` what a
    passing case wants to show (e.g. a warning)."""

    name: str
    classname: str
    seconds: float = 0.0
    failure: str | None = None
    failure_type: str = "failure"
    details: str = ""
    skipped: str | None = None
    output: str = ""

    @property
    def status(self) -> str:
        if self.failure is not None:
            return "failed"
        return "skipped" if self.skipped is not None else "passed"


@dataclass(frozen=True, slots=True)
class JUnitSuite:
    name: str
    cases: Sequence[JUnitCase]
    timestamp: datetime | None = None
    seconds: float | None = None  # None: the sum of the cases
    properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return sum(case.failure is not None for case in self.cases)

    @property
    def skipped(self) -> int:
        return sum(case.status == "skipped" for case in self.cases)

    @property
    def ok(self) -> bool:
        return self.failures == 0


def junit_xml(suite: JUnitSuite) -> str:
    """The suite as a JUnit XML document (`<testsuites>` holding one `<testsuite>`)."""
    seconds = suite.seconds if suite.seconds is not None else sum(c.seconds for c in suite.cases)
    counts = {
        "tests": str(len(suite.cases)),
        "failures": str(suite.failures),
        "errors": "0",
        "skipped": str(suite.skipped),
        "time": f"{seconds:.6f}",
    }
    name = xml_text(suite.name)
    root = ET.Element("testsuites", {"name": name, **counts})
    attributes = {"name": name, **counts}
    if suite.timestamp is not None:
        attributes["timestamp"] = suite.timestamp.isoformat(timespec="seconds")
    element = ET.SubElement(root, "testsuite", attributes)
    if suite.properties:
        properties = ET.SubElement(element, "properties")
        for key, value in suite.properties.items():
            ET.SubElement(properties, "property", {"name": key, "value": xml_text(value)})
    for case in suite.cases:
        item = ET.SubElement(
            element,
            "testcase",
            {
                "classname": xml_text(case.classname),
                "name": xml_text(case.name),
                "time": f"{case.seconds:.6f}" if case.seconds else "0",
            },
        )
        if case.failure is not None:
            failure = ET.SubElement(
                item, "failure", {"message": xml_text(case.failure), "type": case.failure_type}
            )
            failure.text = xml_text(case.details or case.failure)
        elif case.skipped is not None:
            ET.SubElement(item, "skipped", {"message": xml_text(case.skipped)})
        if case.output:
            out = ET.SubElement(item, "system-out")
            out.text = xml_text(case.output)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def write_junit(path: Path, suite: JUnitSuite) -> None:
    """Write the report through a temporary file and a rename: readers see all of it or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(junit_xml(suite))
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_junit(path: Path) -> list[JUnitSuite]:
    """The suites of a JUnit XML file (any producer's, not only keel's); DataError names
    the file when it is not JUnit XML."""
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - CI reports written by this job
    except (OSError, ET.ParseError) as exc:
        raise DataError(f"{path}: not a readable JUnit XML file ({exc})", path=path) from None
    elements = [root] if root.tag == "testsuite" else root.iter("testsuite")
    if root.tag not in {"testsuite", "testsuites"}:
        raise DataError(
            f"{path}: not a JUnit XML file (root element <{root.tag}>)", path=path
        ) from None
    suites = []
    for element in elements:
        cases = []
        for item in element.iter("testcase"):
            failure = item.find("failure")
            if failure is None:
                failure = item.find("error")
            skipped = item.find("skipped")
            cases.append(
                JUnitCase(
                    name=item.get("name", ""),
                    classname=item.get("classname", ""),
                    seconds=_seconds(item.get("time")),
                    failure=None if failure is None else (failure.get("message") or "failed"),
                    details="" if failure is None else (failure.text or ""),
                    skipped=None if skipped is None else (skipped.get("message") or "skipped"),
                )
            )
        suites.append(
            JUnitSuite(element.get("name", path.name), cases, seconds=_seconds(element.get("time")))
        )
    return suites


def _seconds(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0
