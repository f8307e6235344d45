"""Owners named and notified: `keel owners`, and the owner carried by release requests and
by gate evaluations (the audit events that subscribers and webhooks receive)."""

from __future__ import annotations

from pathlib import Path

from keel.domain.audit import AuditEvent
from keel.domain.release import GateResult
from keel.events import subscribe
from keel.project import Project
from tests.fixtures.cli import Keel
from tests.fixtures.trained import MODEL, write_spec
from tests.fixtures.webhooks import Receiver

OWNERS = {"data": "dana", "training": "tom", "release": "rita", "monitoring": "mo"}
TOO_HIGH = {"type": "metric_threshold", "metric": "roc_auc", "min": 0.99}


def _open(folder: Path) -> Project:
    return Project.open(folder, env={"KEEL_USER": "ana"})


# --- keel owners ---------------------------------------------------------------------------


def test_owners_lists_each_stage_with_what_it_covers(keel: Keel, release_project: Path) -> None:
    write_spec(release_project, owners=OWNERS)
    result = keel("-C", release_project, "owners")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[1] == "data        dana             data contract and dataset snapshots"
    assert "release     rita" in result.out
    assert "release gates, approval requests and alias moves" in result.out
    assert "monitoring windows and the alerts they raise" in result.out
    assert "each reaches an owner" in result.out and "UNOWNED" not in result.out

    document = keel("-C", release_project, "owners", "--json").json()
    assert document["ok"] is True and document["unowned_stages"] == []
    assert [(s["stage"], s["owner"]) for s in document["stages"]] == list(OWNERS.items())
    rules = {r["rule"]: r for r in document["alert_rules"]}
    assert document["alert_rules_from"] == "defaults"
    assert rules["feature-drift"]["stage"] == "data"
    assert rules["feature-drift"]["resolves_to"] == "dana"
    assert rules["score-drift"]["resolves_to"] == "mo"


def test_owners_exits_1_and_names_unowned_stages_and_the_rules_that_reach_nobody(
    keel: Keel, release_project: Path
) -> None:
    rules = [
        {"name": "drift", "signal": "drift", "owner": "data"},
        {"name": "quiet", "signal": "volume", "threshold": 0.5, "direction": "below"},
        {"name": "paged", "signal": "schema", "owner": "oncall-team"},
    ]
    write_spec(
        release_project,
        owners={"data": "dana", "training": "tom"},
        monitoring={"alerts": rules},
    )
    result = keel("-C", release_project, "owners")
    assert result.code == 1
    assert "release     -  (UNOWNED)" in result.out
    assert "alert rules: 3 from keel.yaml, 1 reach nobody:" in result.out
    assert "quiet" in result.out and "owner: monitoring -> nobody" in result.out
    assert "UNOWNED: release, monitoring." in result.out
    assert "owners.release: ..., owners.monitoring: ..." in result.out

    document = keel("-C", release_project, "owners", "--json").json()
    assert document["ok"] is False
    assert document["unowned_stages"] == ["release", "monitoring"]
    assert document["unowned_rules"] == ["quiet"]
    paged = next(r for r in document["alert_rules"] if r["rule"] == "paged")
    assert paged["stage"] is None and paged["resolves_to"] == "oncall-team"


def test_a_project_without_owners_section_has_every_stage_unowned(
    keel: Keel, release_project: Path
) -> None:
    result = keel("-C", release_project, "owners", "--json")
    assert result.code == 1
    assert result.json()["unowned_stages"] == ["data", "training", "release", "monitoring"]


# --- failed gates ---------------------------------------------------------------------------


def test_a_failed_gate_evaluation_names_and_notifies_its_owners(
    keel: Keel, release_project: Path, receiver: Receiver
) -> None:
    write_spec(
        release_project,
        {"gates": [{"type": "contract_passed"}, TOO_HIGH], "approvals": {"required": 0}},
        owners=OWNERS,
    )
    with _open(release_project) as project:
        project.metadata.webhooks.add(receiver.url, events=["gates.evaluated"], actor="ana")
    heard: list[AuditEvent] = []
    unsubscribe = subscribe(heard.append, kinds={"gates.evaluated"})
    try:
        result = keel("-C", release_project, "promote", f"{MODEL}@2", "--to", "staging")
    finally:
        unsubscribe()
    assert result.code == 1
    assert "FAIL  roc_auc >= 0.99: roc_auc is 0." in result.out
    assert "[training owner: tom]" in result.out
    assert "release owner: rita" in result.out
    assert "notified: rita, tom (in the gates.evaluated event)" in result.out

    [event] = heard
    evidence = event.evidence
    assert evidence["passed"] is False
    assert evidence["owner"] == "rita"
    assert evidence["notify"] == ["rita", "tom"]
    gates = {g["type"]: g for g in evidence["gates"]}
    assert (gates["contract_passed"]["stage"], gates["contract_passed"]["owner"]) == (
        "data",
        "dana",
    )
    assert (gates["metric_threshold"]["stage"], gates["metric_threshold"]["owner"]) == (
        "training",
        "tom",
    )
    [received] = receiver.received
    delivered = received.json()
    assert delivered["kind"] == "gates.evaluated" and delivered["seq"] == event.seq
    assert delivered["evidence"]["owner"] == "rita"
    assert delivered["evidence"]["notify"] == ["rita", "tom"]

    with _open(release_project) as project:
        stored = project.metadata.releases.evaluation(event.subject or "")
    assert [(g.type, g.owner) for g in stored] == [
        ("contract_passed", "dana"),
        ("metric_threshold", "tom"),
    ]


def test_a_gate_of_an_unowned_stage_falls_to_the_release_owner(
    keel: Keel, release_project: Path
) -> None:
    write_spec(
        release_project,
        {"gates": [TOO_HIGH], "approvals": {"required": 0}},
        owners={"release": "rita"},
    )
    document = keel("-C", release_project, "promote", f"{MODEL}@2", "--to", "staging", "--json")
    assert document.code == 1
    body = document.json()
    assert body["owner"] == "rita" and body["notify"] == ["rita"]
    assert body["gates"][0]["owner"] == "rita"


def test_evaluations_stored_before_owners_read_back_without_one() -> None:
    old = {"gate": "g", "type": "contract_passed", "passed": True, "reason": "ok", "evidence": {}}
    result = GateResult.from_dict(old)
    assert result.owner is None and result.stage == "data"
    assert GateResult.from_dict(result.to_dict()) == result


# --- approval requests ----------------------------------------------------------------------


def test_a_release_request_names_the_release_owner(keel: Keel, release_project: Path) -> None:
    write_spec(release_project, {"approvals": {"required": 1}}, owners=OWNERS)
    pending = keel("-C", release_project, "promote", f"{MODEL}@2", "--to", "production")
    assert pending.code == 8, pending.err
    assert "release owner: rita" in pending.out

    document = keel(
        "-C", release_project, "promote", f"{MODEL}@2", "--to", "production", "--json"
    ).json()
    request = document["request"]
    assert request["owner"] == "rita" and document["owner"] == "rita"

    shown = keel("-C", release_project, "requests", "show", request["id"])
    assert "owner     rita (release)" in shown.out
    shown_json = keel("-C", release_project, "requests", "show", request["id"], "--json").json()
    assert shown_json["request"]["owner"] == "rita"
    listed = keel("-C", release_project, "requests", "list", "--json").json()
    assert [r["owner"] for r in listed["requests"]] == ["rita"]


def test_a_request_without_a_release_owner_says_so(keel: Keel, release_project: Path) -> None:
    write_spec(release_project, {"approvals": {"required": 1}})
    pending = keel("-C", release_project, "promote", f"{MODEL}@2", "--to", "production")
    assert pending.code == 8
    assert "release owner: nobody (set owners.release in keel.yaml)" in pending.out


def test_the_release_requested_event_carries_the_owner(keel: Keel, release_project: Path) -> None:
    write_spec(release_project, {"approvals": {"required": 1}}, owners=OWNERS)
    heard: list[AuditEvent] = []
    unsubscribe = subscribe(heard.append, kinds={"release.requested"})
    try:
        assert keel("-C", release_project, "promote", f"{MODEL}@2", "--to", "production").code == 8
    finally:
        unsubscribe()
    [event] = heard
    assert event.evidence["owner"] == "rita"
