"""`project.explain()`: the data, code, environment and release behind one prediction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.serial import dump

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["Explanation", "check_prediction_id", "explain"]


@dataclass(frozen=True)
class Explanation:
    """The whole lineage of one prediction; each part is the JSON document `keel explain
    --json` prints under the same key (docs/cli.md)."""

    #: The logged prediction: id, time, model version, slot, inputs, outputs, latency.
    prediction: dict[str, Any]
    #: Every label it has had, the current one last.
    labels: list[dict[str, Any]]
    #: The model version, with the aliases it holds now.
    model: dict[str, Any]
    #: The run that trained it: params, metrics, steps.
    run: dict[str, Any]
    #: The dataset version it trained on (None when the run recorded none).
    dataset: dict[str, Any] | None
    #: The feature and training code packaged with it.
    code: dict[str, Any]
    #: The runtime environment it trained in (None when none was recorded).
    environment: dict[str, Any] | None
    #: The alias that answered and the releases (requests, approvals, gates) that put the
    #: version there.
    release: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.prediction["id"])

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


def explain(project: Workspace, prediction_id: str) -> Explanation:
    """The lineage of one logged prediction (as `keel explain ID`): its inputs and outputs,
    model version, run, dataset, code, environment, and the release and approvals that put
    the version in the alias that answered. `ConfigError` for text that is not a prediction
    id, `NotFound` for an id the prediction log does not hold."""
    from keel.serving.explain import explain_prediction

    chain = explain_prediction(project, prediction_id)
    return Explanation(
        prediction=chain["prediction"],
        labels=chain["labels"],
        model=chain["model"],
        run=chain["run"],
        dataset=chain["dataset"],
        code=chain["code"],
        environment=chain["environment"],
        release=chain["release"],
    )


def check_prediction_id(text: str) -> str:
    """`text` as a prediction id (trimmed, lowercase, UUID dashes dropped), checked without
    opening a project; `ConfigError` naming the form when it is not 32 hex characters."""
    from keel.serving.explain import check_prediction_id as check

    return check(text)
