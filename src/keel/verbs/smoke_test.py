"""`project.smoke_test()`: the pipeline trained on a sample in a throwaway store, step by step."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.ci.smoke import SmokeResult
    from keel.workspace import Workspace

__all__ = ["smoke_test"]


def smoke_test(
    project: Workspace, *, rows: int = 2_000, junit: Path | str | None = None
) -> SmokeResult:
    """Train the pipeline on `rows` rows sampled from the data source in a throwaway store,
    checking each step (as `keel smoke-test`); nothing is recorded in the project's stores.
    `result.ok` is false when a step failed; `result.suite` holds each step's case. With
    `junit`, the cases are also written there as JUnit XML. Fewer than 20 rows is a
    `ConfigError`."""
    from keel.ci.smoke import smoke_test as run
    from keel.reports.junit import write_junit

    result = run(project, rows=rows)
    if junit is not None:
        write_junit(Path(junit), result.suite)
    return result
