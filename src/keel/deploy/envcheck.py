"""`keel env check`: the running environment against the lock a model version's run recorded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.code.environment import (
    EnvDifference,
    EnvironmentLock,
    capture_environment,
    diff_environments,
)
from keel.deploy.source import recorded_lock

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["EnvironmentCheck", "check_environment"]


@dataclass(frozen=True, slots=True)
class EnvironmentCheck:
    model: str  # name@version
    run_id: str
    recorded: EnvironmentLock
    current: EnvironmentLock
    differences: list[EnvDifference]

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "model": self.model,
            "run_id": self.run_id,
            "recorded": _summary(self.recorded),
            "current": _summary(self.current),
            "differences": [
                {
                    "kind": d.kind,
                    "change": d.change,
                    "name": d.name,
                    "recorded": d.recorded,
                    "current": d.current,
                    "text": str(d),
                }
                for d in self.differences
            ],
        }


def _summary(lock: EnvironmentLock) -> dict[str, Any]:
    return {
        "digest": str(lock.digest),
        "python": f"{lock.python_implementation} {lock.python_version}",
        "platform": f"{lock.system} {lock.release} {lock.machine}",
        "packages": len(lock.packages),
    }


def check_environment(
    project: Workspace, ref: str, current: EnvironmentLock | None = None
) -> EnvironmentCheck:
    """Every difference between the version's recorded lock and `current` (default: this
    interpreter and machine): interpreter, platform, then packages by name.

    CPU and GPU models are not compared (see `diff_environments`).
    """
    version = project.metadata.models.resolve(ref)
    recorded = recorded_lock(project, version)
    now = capture_environment() if current is None else current
    return EnvironmentCheck(
        version.ref, version.run_id, recorded, now, diff_environments(recorded, now)
    )
