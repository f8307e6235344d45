"""`project.ci_workflow()`: the CI workflow that checks, trains and releases the project."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["CiWorkflow", "ci_workflow"]


@dataclass(frozen=True)
class CiWorkflow:
    """The workflow file written (`path`, of `kind` github or gitlab), the model it
    releases, the branch that trains, the keel version it installs, and the `secrets` the CI
    needs."""

    kind: Literal["github", "gitlab"]
    path: Path
    model: str
    branch: str
    keel_version: str
    secrets: list[str] = field(default_factory=lambda: ["KEEL_DB_URL", "KEEL_ARTIFACTS"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "model": self.model,
            "branch": self.branch,
            "keel_version": self.keel_version,
            "secrets": self.secrets,
        }


def ci_workflow(
    project: Workspace,
    kind: Literal["github", "gitlab"],
    *,
    force: bool = False,
    branch: str = "main",
    model: str | None = None,
    as_of: datetime | None = None,
    rows: int = 2_000,
) -> CiWorkflow:
    """Write the CI workflow (as `keel ci init`): `.github/workflows/keel.yml` (github) or
    `.gitlab-ci.yml` (gitlab). Every change runs the contract check and the smoke test on
    `rows` rows; pushes to `branch` train (as of `as_of`, for historical data), test the new
    version's inference contract and request its promotion. An existing file is replaced
    only with `force` (`Conflict` otherwise); an unknown kind, a bad branch or model name is
    a `ConfigError`."""
    from keel.ci.workflows import KINDS, options_for, render, write_workflow
    from keel.errors import ConfigError
    from keel.version import __version__

    if kind not in KINDS:
        raise ConfigError(
            f"unknown CI kind {kind!r}", problems=[("kind", f"one of {', '.join(KINDS)}")]
        )
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)  # a time without a zone is UTC, as on the CLI
    moment = None if as_of is None else as_of.isoformat()
    options = options_for(
        project,
        keel_version=__version__,
        branch=branch,
        model=model,
        as_of=None if moment is None else moment.replace("+00:00", "Z"),
        rows=rows,
    )
    text = render(kind, options)
    path = write_workflow(project.settings.project_dir, kind, text, force=force)
    return CiWorkflow(kind, path, options.model, options.branch, options.keel_version)
