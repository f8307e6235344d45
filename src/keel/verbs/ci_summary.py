"""`keel.verbs.ci_summary()`: JUnit reports summed up, e.g. for a CI job's summary page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["CiSummary", "ci_summary"]


@dataclass(frozen=True)
class CiSummary:
    """Each JUnit suite read: its name, test, failure and skip counts, and the failed cases
    with their messages."""

    suites: list[dict[str, Any]]

    @property
    def failed(self) -> list[tuple[str, dict[str, Any]]]:
        """(suite, case) of every failed case."""
        return [(suite["suite"], case) for suite in self.suites for case in suite["failed"]]

    def to_markdown(self) -> str:
        """The summary as Markdown, for $GITHUB_STEP_SUMMARY."""
        lines = ["### keel checks", ""]
        if not self.suites:
            return "\n".join([*lines, "no JUnit reports were written"])
        lines += ["| | suite | passed | failed | skipped |", "| --- | --- | --- | --- | --- |"]
        for row in self.suites:
            passed = row["tests"] - row["failures"] - row["skipped"]
            mark = ":x:" if row["failures"] else ":white_check_mark:"
            lines.append(
                f"| {mark} | {row['suite']} | {passed} | {row['failures']} | {row['skipped']} |"
            )
        if self.failed:
            lines += ["", "Failed:"]
            lines += [
                f"- **{case['name']}** ({suite}): {case['message']}" for suite, case in self.failed
            ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"suites": self.suites}


def ci_summary(project: Workspace | None, reports: Sequence[Path | str]) -> CiSummary:
    """Read the JUnit `reports` (files, or folders of *.xml) that keel's checks wrote, as
    `keel ci summary`; needs no project (`keel.verbs.ci_summary(None, ["reports/"])`). A
    missing folder is skipped (no step got to create it); a missing `.xml` file is a
    `DataError` naming it."""
    from keel.errors import DataError
    from keel.reports.junit import read_junit

    del project  # the reports are files: any project, or none
    files: list[Path] = []
    for report in map(Path, reports):
        if report.is_dir():
            files.extend(sorted(report.glob("*.xml")))
        elif report.is_file():
            files.append(report)
        elif report.suffix != ".xml":
            continue  # a reports folder no step got to create: nothing to summarise
        else:
            raise DataError(f"{report}: no such JUnit file", path=report)
    suites = [suite for file in files for suite in read_junit(file)]
    return CiSummary(
        [
            {
                "suite": suite.name,
                "tests": len(suite.cases),
                "failures": suite.failures,
                "skipped": suite.skipped,
                "failed": [
                    {"name": c.name, "message": c.failure}
                    for c in suite.cases
                    if c.failure is not None
                ],
            }
            for suite in suites
        ]
    )
