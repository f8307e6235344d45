"""Release policy: which gates a version passed, and whether its alias move needs approval.

`decide` is a pure function of the policy in keel.yaml and the evidence gathered for one
promotion (`ReleaseEvidence`): both models' scores on the same evaluation data, the
training data's contract report, the inference contract test. It returns every gate's
result with the evidence it was decided on, and one outcome: promote now, wait for
approval, or refuse. Pure: no storage, no I/O. It lives above `keel.domain` because it reads
keel.yaml's gate types (`keel.spec`), which the domain must not import.

`with_owners` names who answers for each gate (the owner of the stage in `GATE_STAGES`, or
the release owner) and `notify_list` whom an evaluation concerns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from keel.domain.metric import direction_of, improvement
from keel.domain.release import GateResult, ReleaseDecision, ReleaseEvidence
from keel.spec import (
    BeatsChampionGate,
    ContractPassedGate,
    Gate,
    InferenceContractGate,
    MetricSpec,
    MetricThresholdGate,
    Owners,
    ReleaseSpec,
)

__all__ = ["decide", "evaluate_gates", "gate_label", "notify_list", "with_owners"]


def with_owners(gates: Iterable[GateResult], owners: Owners) -> tuple[GateResult, ...]:
    """Each result naming who answers for its gate: the owner of the gate's stage, or the
    release owner when that stage has none (None when neither is named)."""
    release = owners.of("release")
    return tuple(
        GateResult(g.gate, g.type, g.passed, g.reason, g.evidence, owners.of(g.stage) or release)
        for g in gates
    )


def notify_list(gates: Iterable[GateResult], owners: Owners) -> list[str]:
    """Whom an evaluation concerns, in order, each once: the release owner, then the owners
    of the gates that failed."""
    names = [owners.of("release"), *(g.owner for g in gates if not g.passed)]
    return list(dict.fromkeys(name for name in names if name))


def gate_label(gate: Gate) -> str:
    """A gate in a few words, as people refer to it: `roc_auc >= 0.65`, ..."""
    if isinstance(gate, MetricThresholdGate):
        bounds = []
        if gate.min is not None:
            bounds.append(f"{gate.metric} >= {gate.min:g}")
        if gate.max is not None:
            bounds.append(f"{gate.metric} <= {gate.max:g}")
        return " and ".join(bounds)
    if isinstance(gate, BeatsChampionGate):
        unit = "%" if gate.relative else ""
        margin = gate.margin * 100 if gate.relative else gate.margin
        champion = gate.alias or "the alias holder"
        return f"beats {champion} on {gate.metric} by {margin:+g}{unit}"
    if isinstance(gate, ContractPassedGate):
        return "training data passed its contract"
    return f"inference contract on {gate.samples} sample requests"


def _metric_threshold(gate: MetricThresholdGate, evidence: ReleaseEvidence) -> GateResult:
    label = gate_label(gate)
    scores = evidence.evaluation.candidate if evidence.evaluation is not None else {}
    value = scores.get(gate.metric)
    base: dict[str, Any] = {"metric": gate.metric, "min": gate.min, "max": gate.max}
    if evidence.evaluation is not None:
        base["data"] = dict(evidence.evaluation.data)
    if value is None or not math.isfinite(value):
        return GateResult(
            label, gate.type, False, f"{gate.metric} was not computed on the evaluation data", base
        )
    base["value"] = value
    if gate.min is not None and value < gate.min:
        return GateResult(
            label,
            gate.type,
            False,
            f"{gate.metric} is {value:.4f}, below the minimum {gate.min:g}",
            base,
        )
    if gate.max is not None and value > gate.max:
        return GateResult(
            label,
            gate.type,
            False,
            f"{gate.metric} is {value:.4f}, above the maximum {gate.max:g}",
            base,
        )
    return GateResult(label, gate.type, True, f"{gate.metric} is {value:.4f}", base)


def _beats_champion(
    gate: BeatsChampionGate, evidence: ReleaseEvidence, metrics: Sequence[MetricSpec]
) -> GateResult:
    label = gate_label(gate)
    champion_alias = gate.alias or evidence.alias
    evaluation = evidence.evaluation
    base: dict[str, Any] = {
        "metric": gate.metric,
        "margin": gate.margin,
        "relative": gate.relative,
        "champion_alias": champion_alias,
    }
    if evaluation is None:
        return GateResult(label, gate.type, False, "the models were not scored", base)
    base["data"] = dict(evaluation.data)
    if evaluation.champion_version is None or evaluation.champion is None:
        return GateResult(
            label,
            gate.type,
            True,
            f"no version holds {champion_alias} yet: there is no champion to beat",
            base,
        )
    mine = evaluation.candidate.get(gate.metric)
    theirs = evaluation.champion.get(gate.metric)
    base.update(champion_version=evaluation.champion_version, candidate=mine, champion=theirs)
    if mine is None or theirs is None or not (math.isfinite(mine) and math.isfinite(theirs)):
        return GateResult(
            label, gate.type, False, f"{gate.metric} could not be computed for both models", base
        )
    higher = direction_of(gate.metric, metrics)
    if higher is None:
        return GateResult(
            label,
            gate.type,
            False,
            f"{gate.metric} has no known direction: list it in metrics with greater_is_better",
            base,
        )
    gain = improvement(mine, theirs, higher_is_better=higher)
    if gate.relative:
        if theirs == 0:
            return GateResult(
                label,
                gate.type,
                False,
                f"the champion's {gate.metric} is 0: no relative margin",
                base,
            )
        gain = gain / abs(theirs)
    base["improvement"] = gain
    shown = f"{gain * 100:+.2f}%" if gate.relative else f"{gain:+.4f}"
    needed = f"{gate.margin * 100:+g}%" if gate.relative else f"{gate.margin:+g}"
    versus = (
        f"{gate.metric} {mine:.4f} against {theirs:.4f} for v{evaluation.champion_version} "
        f"({champion_alias}) on the same {evaluation.data.get('rows', '?')} rows: "
        f"improvement {shown}"
    )
    # A tolerance for equal scores computed through different float paths.
    if gain + 1e-12 >= gate.margin:
        return GateResult(label, gate.type, True, f"{versus}, needed {needed}", base)
    return GateResult(label, gate.type, False, f"{versus}, less than the {needed} needed", base)


def _contract_passed(gate: ContractPassedGate, evidence: ReleaseEvidence) -> GateResult:
    label = gate_label(gate)
    contract = evidence.contract
    if contract is None or not contract.checked:
        detail = contract.detail if contract is not None else "no contract check is recorded"
        return GateResult(
            label, gate.type, False, detail, {} if contract is None else contract.to_dict()
        )
    return GateResult(label, gate.type, bool(contract.ok), contract.detail, contract.to_dict())


def _inference(gate: InferenceContractGate, evidence: ReleaseEvidence) -> GateResult:
    label = gate_label(gate)
    test = evidence.inference
    if test is None:
        return GateResult(label, gate.type, False, "the inference contract test did not run")
    if test.samples == 0:
        return GateResult(
            label, gate.type, False, "no sample requests could be built", test.to_dict()
        )
    if test.failures:
        first = "; ".join(test.failures[:3])
        return GateResult(
            label,
            gate.type,
            False,
            f"{len(test.failures)} of {test.samples} checks failed: {first}",
            test.to_dict(),
        )
    return GateResult(
        label,
        gate.type,
        True,
        f"answered {test.samples} sample requests in its schema",
        test.to_dict(),
    )


def evaluate_gates(
    gates: Iterable[Gate], evidence: ReleaseEvidence, metrics: Sequence[MetricSpec] = ()
) -> list[GateResult]:
    """Each gate that guards `evidence.alias`, decided on the evidence."""
    results: list[GateResult] = []
    for gate in gates:
        if not gate.applies_to(evidence.alias):
            continue
        if isinstance(gate, MetricThresholdGate):
            results.append(_metric_threshold(gate, evidence))
        elif isinstance(gate, BeatsChampionGate):
            results.append(_beats_champion(gate, evidence, metrics))
        elif isinstance(gate, ContractPassedGate):
            results.append(_contract_passed(gate, evidence))
        elif isinstance(gate, InferenceContractGate):
            results.append(_inference(gate, evidence))
    return results


def decide(
    release: ReleaseSpec, evidence: ReleaseEvidence, metrics: Sequence[MetricSpec] = ()
) -> ReleaseDecision:
    """The policy's answer for moving `evidence.alias` to the candidate."""
    results = tuple(evaluate_gates(release.gates, evidence, metrics))
    approvals = release.approvals
    required = approvals.required if evidence.alias in approvals.aliases else 0
    roles = tuple(approvals.roles)
    if not all(g.passed for g in results):
        return ReleaseDecision("refused", results, required, roles)
    return ReleaseDecision("pending" if required > 0 else "promoted", results, required, roles)
