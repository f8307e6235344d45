"""Process bodies for the concurrency tests: a spawned child imports only keel and this."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from keel.project import Project


def snapshot_together(folder: str, source: str, user: str, barrier: Any, results: Any) -> None:
    """Open the project, wait for the others, snapshot; put (user, result or traceback)."""
    try:
        with Project.open(Path(folder), env={"KEEL_USER": user}) as project:
            barrier.wait(timeout=120)
            result = project.snapshot(source)
        results.put((user, (str(result.version.id), result.reused), None))
    except BaseException:
        results.put((user, None, traceback.format_exc()))
        raise
