"""What every command receives: where the project is and the environment, opened lazily."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import click

from keel.errors import ConfigError
from keel.project import Project
from keel.settings import find_project_dir

__all__ = ["CliContext", "pass_cli"]


@dataclass
class CliContext:
    project_path: Path | None
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    _project: Project | None = None

    def project(self) -> Project:
        """The project, opened on first use and closed when the command ends."""
        if self._project is None:
            self._project = Project.open(self.project_path, env=self.env)
            click.get_current_context().call_on_close(self._project.close)
        return self._project

    def project_or_none(self) -> Project | None:
        """The project if there is one here; commands that also work on loose files use it
        for defaults. A keel.yaml that exists but is broken is still an error."""
        if self.project_path is None and "KEEL_PROJECT" not in self.env:
            try:
                find_project_dir(Path.cwd(), self.env)
            except ConfigError:
                return None
        return self.project()


pass_cli = click.make_pass_decorator(CliContext)
