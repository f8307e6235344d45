"""`keel.Project`: one keel project and the verbs a user runs on it.

A Project is a `keel.workspace.Workspace` (settings, spec, metadata and artifact stores)
that also carries the CLI's verbs, so a notebook or an orchestrator task does what the CLI
does, with the same checks and the same audit trail:

    import keel

    with keel.Project.open("path/to/project") as project:
        print(project.status().ok)

This module is the top of keel's layers (with the CLI and the server composition): it may
import any service, and no service imports it. Services take a Workspace.
"""

from __future__ import annotations

from keel.workspace import ProjectStatus, VerifyReport, Workspace

__all__ = ["Project", "ProjectStatus", "VerifyReport"]


class Project(Workspace):
    """A keel project with its verbs; see docs/python-api.md."""
