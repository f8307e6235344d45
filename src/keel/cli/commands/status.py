"""`keel status`: the project, the stores in use and their health."""

from __future__ import annotations

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.errors import EXIT_CHECK_FAILED, EXIT_OK
from keel.cli.output import emit, json_option
from keel.project import ProjectStatus

__all__ = ["status"]


def _render(status: ProjectStatus) -> str:
    lines = [
        f"project    {status.name}  ({status.project_dir})",
        f"user       {status.user}",
    ]
    for store in status.stores:
        mark = "ok " if store.ok else "FAIL"
        lines.append(
            f"{store.kind:<10} {mark} {store.backend:<10} {store.url}  "
            f"({store.latency_ms:.1f} ms) {store.detail}"
        )
    revision = status.schema_revision or "none"
    lines.append(f"schema     {revision} (head {status.schema_head or '?'})")
    lines.append(f"artifacts  {status.artifacts_recorded:,} recorded")
    lines.append(f"datasets   {status.dataset_versions:,} versions")
    lines.extend(f"warning    {warning}" for warning in status.warnings)
    return "\n".join(lines)


@click.command()
@json_option
@pass_cli
def status(cli: CliContext, as_json: bool) -> int:
    """Show the project, its stores and their health. Exits 1 if a store is unhealthy."""
    report = cli.project().status()
    emit(as_json, report.to_dict(), lambda: _render(report))
    return EXIT_OK if report.ok else EXIT_CHECK_FAILED
