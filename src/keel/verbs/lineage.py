"""`project.lineage()`: the whole chain behind a model version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["ModelLineage", "lineage"]


@dataclass(frozen=True)
class ModelLineage:
    """Each link from a model version back to its data, code and environment, as stored:
    `model` (with the aliases it holds), `run` (params, metrics, steps), `dataset` (None
    when the run recorded none; `missing` when it is gone from the store), `code` (the
    packaged feature and training code) and `environment` (None when not recorded)."""

    model: dict[str, Any]
    run: dict[str, Any]
    dataset: dict[str, Any] | None
    code: dict[str, Any]
    environment: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "run": self.run,
            "dataset": self.dataset,
            "code": self.code,
            "environment": self.environment,
        }


def lineage(project: Workspace, ref: str) -> ModelLineage:
    """The chain behind model version `ref` (`MODEL@VERSION` or `MODEL@ALIAS`): run,
    dataset, code, git, environment, each read from the stores, never recomputed (as `keel
    lineage`). A malformed `ref` is a `ConfigError`; an unknown one `NotFound`."""
    from keel.domain.model import parse_model_ref
    from keel.lineage.chain import model_lineage

    parse_model_ref(ref)
    chain = model_lineage(project, ref)
    return ModelLineage(
        chain["model"], chain["run"], chain["dataset"], chain["code"], chain["environment"]
    )
