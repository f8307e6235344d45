"""The engine a verb runs its data work on: keel.yaml's `engine:`, or the one asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.spec import EngineSpec
    from keel.workspace import Workspace

__all__ = ["engine_spec"]


def engine_spec(project: Workspace | None, engine: str | EngineSpec | None) -> EngineSpec:
    """`engine` (`local`, `spark` or a whole `EngineSpec`; None: keel.yaml's `engine:`, or
    local outside a project); `ConfigError` (field `engine`) for another name."""
    from keel.errors import ConfigError
    from keel.spec import EngineSpec

    if isinstance(engine, EngineSpec):
        return engine
    base = project.spec.engine if project is not None else EngineSpec()
    if engine is None:
        return base
    if engine not in ("local", "spark"):
        rule = f"expected local or spark, got {engine!r}"
        raise ConfigError(f"engine: {rule}", problems=[("engine", rule)])
    # The project's master and settings still apply: engine picks the kind only.
    return base.model_copy(update={"kind": engine})
