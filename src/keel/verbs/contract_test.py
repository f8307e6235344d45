"""`project.contract_test()`: a version's inference contract tested with real rows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.ci.contract_test import ContractTestResult
    from keel.workspace import Workspace

__all__ = ["contract_test"]


def contract_test(
    project: Workspace,
    ref: str,
    *,
    url: str | None = None,
    rows: int = 100,
    junit: Path | str | None = None,
) -> ContractTestResult:
    """Test the inference contract of the version `ref` names (`name@3`, `name@alias`), as
    `keel contract-test`: `rows` real rows from its holdout answered in shape, type and
    range, bad requests refused naming the field; against the model loaded here, or the
    server at `url` (`keel serve`). `result.ok` is false when a check failed. With `junit`,
    the checks are also written there as JUnit XML. A `url` that is not http(s) is a
    `ConfigError`."""
    from keel.ci.contract_test import contract_test as run
    from keel.errors import ConfigError
    from keel.reports.junit import write_junit

    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"expected an http(s) URL, got {url!r}", problems=[("url", "an http(s) URL")]
        )
    result = run(project, ref, url=url, rows=rows)
    if junit is not None:
        write_junit(Path(junit), result.suite)
    return result
