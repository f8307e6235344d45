"""`keel promote`: each gate passing and failing with its reason and stored evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel.domain.digest import Digest
from keel.models.signing import sign_version
from keel.project import Project
from tests.fixtures.cli import Keel
from tests.fixtures.trained import MODEL, write_spec

NO_APPROVALS = {"required": 0}


def _open(folder: Path, user: str = "ana") -> Project:
    return Project.open(folder, env={"KEEL_USER": user})


def _gate(document: dict[str, object], kind: str) -> dict[str, object]:
    gates = document["gates"]
    assert isinstance(gates, list)
    found = [g for g in gates if g["type"] == kind]
    assert len(found) == 1, gates
    result: dict[str, object] = found[0]
    return result


def test_metric_threshold_refuses_with_the_value_and_stores_the_evidence(
    keel: Keel, release_project: Path
) -> None:
    write_spec(
        release_project,
        {
            "gates": [{"type": "metric_threshold", "metric": "roc_auc", "min": 0.95}],
            "approvals": NO_APPROVALS,
        },
    )
    result = keel("-C", release_project, "promote", f"{MODEL}@2", "--to", "staging", "--json")
    assert result.code == 1, result.err
    document = result.json()
    assert document["outcome"] == "refused"
    gate = _gate(document, "metric_threshold")
    assert gate["passed"] is False
    assert "below the minimum 0.95" in str(gate["reason"])
    evidence = gate["evidence"]
    assert isinstance(evidence, dict) and 0.6 < evidence["value"] < 0.95
    assert evidence["data"]["selection"].startswith("holdout of run ")

    text = keel("-C", release_project, "promote", f"{MODEL}@2", "--to", "staging")
    assert text.code == 1
    assert "FAIL  roc_auc >= 0.95: roc_auc is 0." in text.out
    assert "REFUSED: 1 gate(s) failed; staging stays at nothing" in text.out

    with _open(release_project) as project:
        assert project.metadata.releases.holder(MODEL, "staging") is None
        stored = project.metadata.releases.evaluation(document["evaluation"])
        assert [g.passed for g in stored] == [False]
        assert stored[0].evidence["value"] == evidence["value"]
        kinds = [e.kind for e in project.metadata.audit.events(model=MODEL)]
        assert kinds.count("gates.evaluated") == 2 and "alias.moved" not in kinds


def test_metric_threshold_passes_and_moves_the_alias(keel: Keel, release_project: Path) -> None:
    write_spec(
        release_project,
        {
            "gates": [{"type": "metric_threshold", "metric": "roc_auc", "min": 0.6}],
            "approvals": NO_APPROVALS,
        },
    )
    result = keel("-C", release_project, "promote", f"{MODEL}@2", "--to", "staging", "--json")
    assert result.code == 0, result.out + result.err
    document = result.json()
    assert document["outcome"] == "promoted" and document["previous"] is None
    assert _gate(document, "metric_threshold")["passed"] is True
    with _open(release_project) as project:
        assert project.metadata.models.resolve(f"{MODEL}@staging").version == 2
        moved = project.metadata.audit.events(kinds=["alias.moved"])
        assert [(e.version, e.alias, e.actor) for e in moved] == [(2, "staging", "ana")]


def _production(folder: Path, version: int) -> None:
    """Put `version` in production directly (test setup, outside the policy)."""
    with _open(folder) as project:
        releases = project.metadata.releases
        releases.move_alias(
            MODEL,
            "production",
            version,
            expected_holder=releases.holder(MODEL, "production"),
            actor="setup",
            reason="test setup",
        )


def test_beats_champion_scores_both_models_on_the_same_rows(
    keel: Keel, release_project: Path
) -> None:
    write_spec(
        release_project,
        {
            "gates": [{"type": "beats_champion", "metric": "roc_auc", "margin": 0.0}],
            "approvals": NO_APPROVALS,
        },
    )
    _production(release_project, 2)
    weak = keel("-C", release_project, "promote", f"{MODEL}@3", "--to", "production", "--json")
    assert weak.code == 1, weak.err
    gate = _gate(weak.json(), "beats_champion")
    evidence = gate["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["champion_version"] == 2
    assert evidence["candidate"] < evidence["champion"]
    assert evidence["improvement"] == pytest.approx(evidence["candidate"] - evidence["champion"])
    assert "less than the +0 needed" in str(gate["reason"])
    assert f"on the same {evidence['data']['rows']} rows" in str(gate["reason"])

    # The champion's score is computed now, on the candidate's holdout, not read from
    # what was logged when it was trained (on its own holdout).
    with _open(release_project) as project:
        champion = project.metadata.models.get(MODEL, 2)
        scores = project.metadata.audit.events(kinds=["gates.evaluated"])[-1].evidence["scores"]
    assert scores["champion"]["roc_auc"] == evidence["champion"]
    assert scores["data"] == evidence["data"]
    # v3 and v2 were trained on the same dataset and split, so here the holdouts agree:
    assert scores["champion"]["roc_auc"] == pytest.approx(champion.metrics["roc_auc"])


def test_beats_champion_relative_margin_and_a_tolerated_shortfall(
    keel: Keel, release_project: Path
) -> None:
    _production(release_project, 2)
    write_spec(
        release_project,
        {
            "gates": [
                {"type": "beats_champion", "metric": "roc_auc", "margin": 0.5, "relative": True}
            ],
            "approvals": NO_APPROVALS,
        },
    )
    strict = keel("-C", release_project, "promote", f"{MODEL}@1", "--to", "production", "--json")
    assert strict.code == 1
    assert "%" in str(_gate(strict.json(), "beats_champion")["reason"])

    write_spec(
        release_project,
        {
            "gates": [{"type": "beats_champion", "metric": "roc_auc", "margin": -0.05}],
            "approvals": NO_APPROVALS,
        },
    )
    lenient = keel("-C", release_project, "promote", f"{MODEL}@1", "--to", "production", "--json")
    assert lenient.code == 0, lenient.out
    assert _gate(lenient.json(), "beats_champion")["passed"] is True


def test_beats_champion_passes_when_nothing_holds_the_alias(
    keel: Keel, release_project: Path
) -> None:
    write_spec(
        release_project,
        {
            "gates": [{"type": "beats_champion", "metric": "log_loss", "margin": 0.0}],
            "approvals": NO_APPROVALS,
        },
    )
    result = keel("-C", release_project, "promote", f"{MODEL}@3", "--to", "production", "--json")
    assert result.code == 0
    assert "no champion to beat" in str(_gate(result.json(), "beats_champion")["reason"])


def test_beats_champion_respects_lower_is_better_metrics(keel: Keel, release_project: Path) -> None:
    _production(release_project, 3)
    write_spec(
        release_project,
        {
            "gates": [{"type": "beats_champion", "metric": "log_loss", "margin": 0.0}],
            "approvals": NO_APPROVALS,
        },
    )
    result = keel("-C", release_project, "promote", f"{MODEL}@2", "--to", "production", "--json")
    assert result.code == 0, result.out
    evidence = _gate(result.json(), "beats_champion")["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["candidate"] < evidence["champion"]  # lower log loss
    assert evidence["improvement"] > 0


def test_canary_moves_compare_with_production(keel: Keel, release_project: Path) -> None:
    _production(release_project, 2)
    write_spec(
        release_project,
        {
            "gates": [
                {
                    "type": "beats_champion",
                    "metric": "roc_auc",
                    "margin": 0.0,
                    "alias": "production",
                }
            ],
            "approvals": NO_APPROVALS,
        },
    )
    result = keel("-C", release_project, "promote", f"{MODEL}@3", "--to", "canary", "--json")
    assert result.code == 1
    evidence = _gate(result.json(), "beats_champion")["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["champion_alias"] == "production" and evidence["champion_version"] == 2


def test_contract_passed_needs_a_recorded_check(keel: Keel, release_project: Path) -> None:
    from keel.pipeline.train import train
    from tests.fixtures.trained import AS_OF, BASE

    # A version trained without a contract (and new params, so it is a new model).
    data = {k: v for k, v in BASE["data"].items() if k != "contract"}  # type: ignore[union-attr]
    write_spec(
        release_project, data=data, training={**BASE["training"], "params": {"max_iter": 11}}
    )  # type: ignore[dict-item]
    with _open(release_project) as project:
        assert train(project, as_of=AS_OF).registered is not None
    gates = {"gates": [{"type": "contract_passed"}], "approvals": NO_APPROVALS}
    write_spec(release_project, gates)
    unchecked = keel("-C", release_project, "promote", f"{MODEL}@4", "--to", "staging", "--json")
    assert unchecked.code == 1
    assert "did not check the training data against a contract" in str(
        _gate(unchecked.json(), "contract_passed")["reason"]
    )
    checked = keel("-C", release_project, "promote", f"{MODEL}@1", "--to", "staging", "--json")
    assert checked.code == 0
    gate = _gate(checked.json(), "contract_passed")
    assert str(gate["reason"]).startswith("passed: ") and " checks on 20,000 rows, 0 failed" in str(
        gate["reason"]
    )
    evidence = gate["evidence"]
    assert isinstance(evidence, dict) and evidence["report"].startswith("blake3:")


def test_inference_contract_gate_catches_a_schema_the_model_does_not_answer(
    keel: Keel, release_project: Path
) -> None:
    gates = {"gates": [{"type": "inference_contract", "samples": 25}], "approvals": NO_APPROVALS}
    write_spec(release_project, gates)
    good = keel("-C", release_project, "promote", f"{MODEL}@1", "--to", "staging", "--json")
    assert good.code == 0, good.out
    assert "answered 25 sample requests" in str(_gate(good.json(), "inference_contract")["reason"])

    with _open(release_project) as project:
        v1 = project.metadata.models.get(MODEL, 1)
        contract = json.loads(json.dumps(v1.inference_contract))
        for field in contract["inputs"]:
            if field["name"] == "carrier":
                field["type"] = "float"  # a stored schema the real requests do not match
        broken = project.metadata.models.register(
            MODEL,
            run_id=v1.run_id,
            package=v1.package,
            flavor=v1.flavor,
            inference_contract=contract,
            metrics=v1.metrics,
            actor="ana",
            # Signed as `keel train` signs: the gate, not the signature, must catch the schema.
            sign=lambda version: sign_version(project.keys.signer(), version),
        )
        # Completed as `keel train` completes a version (its run, a reference profile), so
        # that the gate, not the check of a complete registration, has to catch it.
        reference = project.metadata.monitoring.reference(MODEL, 1)
        assert reference is not None
        project.metadata.monitoring.put_reference(
            MODEL,
            broken.version,
            Digest.parse(reference.profile),
            row_count=reference.row_count,
            source=reference.source,
        )
    bad = keel("-C", release_project, "promote", broken.ref, "--to", "staging", "--json")
    assert bad.code == 1
    reason = str(_gate(bad.json(), "inference_contract")["reason"])
    assert "carrier" in reason and "wrong type" in reason


def test_gates_scoped_to_aliases_only_guard_those(keel: Keel, release_project: Path) -> None:
    write_spec(
        release_project,
        {
            "gates": [
                {
                    "type": "metric_threshold",
                    "metric": "roc_auc",
                    "min": 0.99,
                    "aliases": ["production"],
                }
            ],
            "approvals": NO_APPROVALS,
        },
    )
    staging = keel("-C", release_project, "promote", f"{MODEL}@3", "--to", "staging", "--json")
    assert staging.code == 0 and staging.json()["gates"] == []
    production = keel("-C", release_project, "promote", f"{MODEL}@3", "--to", "production")
    assert production.code == 1


def test_promote_refuses_bad_input_and_changes_nothing(keel: Keel, release_project: Path) -> None:
    write_spec(release_project, {"approvals": NO_APPROVALS})
    cases = [
        (("promote", f"{MODEL}@9", "--to", "staging"), 3, "has no version 9"),
        (("promote", "nope@1", "--to", "staging"), 3, "no model 'nope'"),
        (("promote", f"{MODEL}@1", "--to", "Bad Alias"), 2, "alias name 'Bad Alias' is invalid"),
        (("promote", f"{MODEL}@1", "--to", "latest"), 2, "is invalid"),
        (("promote", f"{MODEL}@1", "--to", "staging", "--reason", "x" * 3000), 2, "limit"),
    ]
    for args, code, message in cases:
        result = keel("-C", release_project, *args)
        assert result.code == code, (args, result.err)
        assert message in result.err, (args, result.err)
    assert keel("-C", release_project, "promote", f"{MODEL}@1", "--to", "staging").code == 0
    again = keel("-C", release_project, "promote", f"{MODEL}@1", "--to", "staging")
    assert again.code == 4 and "already points at v1" in again.err
    with _open(release_project) as project:
        assert [e.kind for e in project.metadata.audit.events(kinds=["alias.moved"])] == [
            "alias.moved"
        ]
        assert project.metadata.audit.verify().ok
