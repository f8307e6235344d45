"""`keel init [DIR]`: scaffold a project with a commented keel.yaml and create its stores."""

from __future__ import annotations

from pathlib import Path

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import emit, json_option
from keel.examples import EXAMPLES, example
from keel.project import Project

__all__ = ["init"]


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Project name (default: the folder's name, made valid).")
@click.option("--force", is_flag=True, help="Overwrite an existing keel.yaml with the template.")
@click.option(
    "--example",
    "chosen",
    type=click.Choice(EXAMPLES),
    help="Write a complete example project instead of the template (data included).",
)
@json_option
@pass_cli
def init(
    cli: CliContext,
    directory: Path | None,
    name: str | None,
    force: bool,
    chosen: str | None,
    as_json: bool,
) -> int:
    """Create keel.yaml in DIR (default: the current folder) and set up the stores."""
    folder = directory or Path.cwd()
    project = Project.init(folder, name=name, force=force, env=cli.env, example=chosen)
    try:
        settings = project.settings
        payload = {
            "ok": True,
            "project": {"name": project.spec.name, "dir": str(settings.project_dir)},
            "spec": str(settings.spec_path),
            "metadata": project.metadata.url,
            "artifacts": project.artifacts.url,
        }
        next_step = (
            f"Next: `keel train --as-of {example(chosen).as_of}` (the data is from "
            f"{example(chosen).period}; --as-of checks its freshness as of then)."
            if chosen
            else "Next: edit keel.yaml (data source, entry points, metrics), then `keel status`."
        )
        emit(
            as_json,
            payload,
            lambda: (
                f"Created keel project '{project.spec.name}' in {settings.project_dir}\n"
                f"  spec       {settings.spec_path}\n"
                f"  metadata   {project.metadata.url}\n"
                f"  artifacts  {project.artifacts.url}\n"
                f"{next_step}"
            ),
        )
    finally:
        project.close()
    return 0
