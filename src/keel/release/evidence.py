"""Gathering the evidence a promotion is decided on.

Both models are scored here, now, on the same rows, by the same metric code: the
candidate and the version holding the champion alias. By default the rows are the
candidate run's holdout (the raw rows its features step marked, so each model computes
its own features with its own packaged feature code); `eval_data` names a dataset
version to use instead, e.g. the most recent labelled window. Numbers logged at
training time are never compared with each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from keel.domain.model import ModelVersion
from keel.domain.release import (
    EvaluationEvidence,
    InferenceEvidence,
    ReleaseEvidence,
)
from keel.models.evaluation import EvaluationData, contract_evidence, load_evaluation_data
from keel.spec import (
    BeatsChampionGate,
    ContractPassedGate,
    Gate,
    InferenceContractGate,
    MetricThresholdGate,
)

if TYPE_CHECKING:
    from keel.models.package import LoadedModel
    from keel.workspace import Workspace

__all__ = [
    "gather_evidence",
    "load_model",
]


def load_model(project: Workspace, version: ModelVersion) -> LoadedModel:
    """A registered version's package, fetched from the store, verified, loaded (and kept
    by the open project, see `keel.models.loader`)."""
    from keel.models.loader import load_model as load

    return load(project, version)


def _score(project: Workspace, model: LoadedModel, data: EvaluationData) -> dict[str, float]:
    from keel.metrics import evaluate

    predictions = model.predict(data.raw)
    scores = None
    if model.has_predict_proba:
        scores = model.predict_proba(data.raw)[:, 1]
    return evaluate(project.spec.metrics, data.labels, y_pred=predictions, y_score=scores)


def _jsonable(value: Any, *, date_only: bool = False) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat"):
        if value != value:  # NaT, the only time unequal to itself
            return None
        # A date input is sent as YYYY-MM-DD, as clients write dates.
        return (value.date() if date_only and hasattr(value, "date") else value).isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


def _inference_evidence(
    model: LoadedModel, version: ModelVersion, data: EvaluationData, samples: int
) -> InferenceEvidence:
    """Send real rows through the model as requests would arrive, and check the answers."""
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    from keel.models.signature import InferenceContract, validate_request

    failures: list[str] = []
    if not version.inference_contract:
        return InferenceEvidence(0, ("the version has no stored inference contract",))
    contract = InferenceContract.from_dict(version.inference_contract)
    # A request carries the inputs the version takes, not every column of the data: a
    # column keel.yaml excludes (data.exclude) would be refused as unknown.
    rows = data.raw[[n for n in contract.input_names if n in data.raw.columns]].head(samples)
    dates = {f.name for f in contract.inputs if f.type == "date"}
    records = [
        {str(k): _jsonable(v, date_only=k in dates) for k, v in record.items()}
        for record in rows.to_dict(orient="records")
    ]
    for problem in validate_request(contract, records)[:20]:
        failures.append(f"request {problem.record}: {problem}")
    try:
        frame = pd.DataFrame.from_records(records, columns=list(rows.columns)).astype(
            rows.dtypes.to_dict()
        )
        predictions = np.asarray(model.predict(frame))
        if len(predictions) != len(records):
            failures.append(f"{len(predictions)} predictions for {len(records)} requests")
        elif predictions.dtype.kind in "fc" and not np.isfinite(predictions).all():
            failures.append("a prediction is not a finite number")
        if model.has_predict_proba:
            probabilities = np.asarray(model.predict_proba(frame))
            if not ((probabilities >= 0) & (probabilities <= 1)).all():
                failures.append("a probability lies outside [0, 1]")
    except Exception as exc:  # noqa: BLE001 - the test reports any failure as evidence
        failures.append(f"predict raised {type(exc).__name__}: {exc}")
    return InferenceEvidence(len(records), tuple(failures))


def gather_evidence(
    project: Workspace,
    version: ModelVersion,
    alias: str,
    holder: int | None,
    gates: Sequence[Gate],
    *,
    eval_data: str | None = None,
) -> ReleaseEvidence:
    """Everything the gates guarding `alias` need, and nothing they do not."""
    applicable = [g for g in gates if g.applies_to(alias)]
    scoring = [g for g in applicable if isinstance(g, MetricThresholdGate | BeatsChampionGate)]
    inference = [g for g in applicable if isinstance(g, InferenceContractGate)]
    evaluation = None
    inference_evidence = None
    data = None
    candidate_model = None
    if scoring or inference:
        data = load_evaluation_data(project, version, eval_data)
        candidate_model = load_model(project, version)
    if scoring:
        assert data is not None and candidate_model is not None
        champion_version = None
        champion_scores = None
        beats = next((g for g in scoring if isinstance(g, BeatsChampionGate)), None)
        if beats is not None:
            champion_alias = beats.alias or alias
            champion_version = project.metadata.releases.holder(version.model, champion_alias)
            if champion_version is not None:
                champion = project.metadata.models.get(version.model, champion_version)
                champion_scores = _score(project, load_model(project, champion), data)
        evaluation = EvaluationEvidence(
            data=data.description,
            candidate=_score(project, candidate_model, data),
            champion_version=champion_version,
            champion=champion_scores,
        )
    if inference:
        assert data is not None and candidate_model is not None
        inference_evidence = _inference_evidence(
            candidate_model, version, data, max(g.samples for g in inference)
        )
    contract = None
    if any(isinstance(g, ContractPassedGate) for g in applicable):
        contract = contract_evidence(project, version)
    return ReleaseEvidence(
        model=version.model,
        version=version.version,
        alias=alias,
        holder=holder,
        evaluation=evaluation,
        contract=contract,
        inference=inference_evidence,
    )
