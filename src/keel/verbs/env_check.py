"""`project.env_check()`: this environment against the one a version's run recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.deploy.envcheck import EnvironmentCheck
    from keel.workspace import Workspace

__all__ = ["env_check"]


def env_check(project: Workspace, ref: str) -> EnvironmentCheck:
    """Every difference between this environment and the lock the run of the version `ref`
    names recorded (as `keel env check`): Python version and implementation, platform, and
    each package missing, added or at another version. `result.ok` is true when identical.
    A malformed reference is a `ConfigError`; an unknown version `NotFound`."""
    from keel.deploy.envcheck import check_environment
    from keel.domain.model import parse_model_ref

    parse_model_ref(ref)
    return check_environment(project, ref)
